package web

import (
	"math"
	"testing"
	"time"
)

// TestProviderAuthTimeOutOfRangeIsUnknown: an auth_time the provider's
// clock cannot have meant (more than reauthSkew ahead, before 1970, too
// large for a time) is unknown, never now; one a little ahead is now
// (docs/security.md T-178).
func TestProviderAuthTimeOutOfRangeIsUnknown(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	h := &Handler{o: Options{Now: func() time.Time { return now }}}
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		in   *float64
		want time.Time
	}{
		{"absent", nil, time.Time{}},
		{"an hour ago", f(float64(now.Add(-time.Hour).Unix())), now.Add(-time.Hour)},
		{"30 s ahead", f(float64(now.Add(30 * time.Second).Unix())), now},
		{"2 min ahead", f(float64(now.Add(2 * time.Minute).Unix())), time.Time{}},
		{"1e20", f(1e20), time.Time{}},
		{"-1e20", f(-1e20), time.Time{}},
		{"-1", f(-1), time.Time{}},
		{"+Inf", f(math.Inf(1)), time.Time{}},
		{"NaN", f(math.NaN()), time.Time{}},
	} {
		if got := h.authenticatedAt(tc.in); !got.Equal(tc.want) {
			t.Errorf("%s: authenticatedAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}
