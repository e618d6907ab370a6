package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// TestDetachFloor (docs/reliability.md "Bounded storage calls",
// docs/security.md F-87): a detached write always has time to run, even
// when the request's own call used up its call_timeout and the moment
// http.write_timeout leaves for the response (Latest) has passed; it had
// a deadline already past, so a revocation row that must be kept
// (docs/security.md T-160) was never written on a healthy database.
func TestDetachFloor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bound   storage.DetachBound
		atLeast time.Duration // from now
		atMost  time.Duration
	}{
		{"latest passed", storage.DetachBound{Timeout: 2 * time.Second, Latest: time.Now().Add(-time.Second)}, storage.DetachMinimum, storage.DetachMinimum},
		{"latest passed, short call_timeout", storage.DetachBound{Timeout: 300 * time.Millisecond, Latest: time.Now().Add(-time.Second)}, 300 * time.Millisecond, 300 * time.Millisecond},
		{"latest soon", storage.DetachBound{Timeout: 5 * time.Second, Latest: time.Now().Add(100 * time.Millisecond)}, storage.DetachMinimum, storage.DetachMinimum},
		{"latest later than the floor", storage.DetachBound{Timeout: 5 * time.Second, Latest: time.Now().Add(3 * time.Second)}, 3*time.Second - 200*time.Millisecond, 3 * time.Second},
		{"call_timeout first", storage.DetachBound{Timeout: 2 * time.Second, Latest: time.Now().Add(time.Minute)}, 2 * time.Second, 2 * time.Second},
		{"no bound", storage.DetachBound{}, storage.DetachedTimeout, storage.DetachedTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.bound != (storage.DetachBound{}) {
				ctx = storage.WithDetachBound(ctx, tc.bound)
			}
			parent, stop := context.WithCancel(ctx)
			stop() // the request's context has ended
			before := time.Now()
			dctx, cancel := storage.Detach(parent)
			defer cancel()
			after := time.Now()
			if err := dctx.Err(); err != nil {
				t.Fatalf("detached context already ended: %v", err)
			}
			deadline, ok := dctx.Deadline()
			if !ok {
				t.Fatal("detached context has no deadline")
			}
			if deadline.Before(before.Add(tc.atLeast)) || deadline.After(after.Add(tc.atMost)) {
				t.Errorf("deadline %s from now, want between %s and %s", deadline.Sub(before).Round(time.Millisecond), tc.atLeast, tc.atMost)
			}
		})
	}
}
