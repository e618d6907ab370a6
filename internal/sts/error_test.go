package sts_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/opensts/sts/internal/sts"
)

func TestErrorCodeAndMessage(t *testing.T) {
	cause := errors.New("pq: connection refused")
	tests := []struct {
		name     string
		err      error
		wantCode sts.Code
		wantMsg  string
	}{
		{"nil", nil, "", ""},
		{"plain error", cause, sts.Internal, "internal error"},
		{"domain error", sts.Errorf(sts.NotFound, "personal access token %s not found", "p1"), sts.NotFound, "personal access token p1 not found"},
		{"wrapped domain error", fmt.Errorf("load: %w", sts.Wrap(sts.Unavailable, cause, "storage unavailable")), sts.Unavailable, "storage unavailable"},
		{"internal message never shown", sts.Wrap(sts.Internal, cause, "query failed on table x"), sts.Internal, "internal error"},
	}
	for _, tc := range tests {
		if got := sts.ErrorCode(tc.err); got != tc.wantCode {
			t.Errorf("%s: ErrorCode = %q, want %q", tc.name, got, tc.wantCode)
		}
		if got := sts.ErrorMessage(tc.err); got != tc.wantMsg {
			t.Errorf("%s: ErrorMessage = %q, want %q", tc.name, got, tc.wantMsg)
		}
	}
	if err := sts.Wrap(sts.Unavailable, cause, "x"); !errors.Is(err, cause) {
		t.Errorf("errors.Is(Wrap(cause), cause) = false")
	}
}
