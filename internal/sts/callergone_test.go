package sts_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/opensts/sts/internal/sts"
)

// TestCallerGone: only a cancel error under a canceled context is the
// caller going away (docs/security.md F-110).
func TestCallerGone(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	late, cancelLate := context.WithTimeout(context.Background(), 0)
	defer cancelLate()
	down := errors.New("database is down")
	wrapped := fmt.Errorf("list pools: %w", context.Canceled)
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"canceled under a canceled context", gone, context.Canceled, true},
		{"wrapped cancel under a canceled context", gone, wrapped, true},
		{"a fault under a canceled context", gone, down, false},
		{"nil under a canceled context", gone, nil, false},
		{"a cancel under a live context", live, context.Canceled, false},
		{"a cancel under a passed deadline", late, context.Canceled, false},
		{"a deadline under a passed deadline", late, context.DeadlineExceeded, false},
	} {
		if got := sts.CallerGone(c.ctx, c.err); got != c.want {
			t.Errorf("%s: CallerGone = %v, want %v", c.name, got, c.want)
		}
	}
}
