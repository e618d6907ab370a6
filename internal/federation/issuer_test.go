package federation_test

import (
	"testing"

	"github.com/opensts/sts/internal/federation"
)

// TestSameIssuer: an issuer spelled otherwise (scheme or host case, the
// scheme's default port, a trailing slash) is the same issuer; a path's
// case, another port, scheme or host is not, and an empty one names none
// (docs/security.md A-56, T-166).
func TestSameIssuer(t *testing.T) {
	const ours = "https://sts.example"
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{ours, ours, true},
		{"https://sts.example/", ours, true},
		{"https://sts.example//", ours, true},
		{"HTTPS://STS.EXAMPLE", ours, true},
		{"https://STS.example", ours, true},
		{"https://sts.example:443", ours, true},
		{"HTTPS://Sts.Example:443/", "https://sts.example/", true},
		{"http://sts.example:80/", "http://sts.example", true},
		{"https://sts.example/tenant/", "https://STS.example:443/tenant", true},
		{"https://[::1]:443", "https://[::1]", true},
		{"https://sts.example/Tenant", "https://sts.example/tenant", false},
		{"https://sts.example:8443", ours, false},
		{"http://sts.example", ours, false},
		{"https://sts.example:80", ours, false},
		{"https://sts.example.evil", ours, false},
		{"https://other.example", ours, false},
		{"sts.example", ours, false},
		{"urn:sts", "urn:sts", true},
		{"", ours, false},
		{ours, "", false},
		{"", "", false},
	} {
		if got := federation.SameIssuer(tc.a, tc.b); got != tc.want {
			t.Errorf("SameIssuer(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := federation.SameIssuer(tc.b, tc.a); got != tc.want {
			t.Errorf("SameIssuer(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
