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

// TestPlainIssuer: the spellings a WHATWG URL parser (new URL(iss).href in
// Node and browsers), DNS or an HTTP client reads as another spelling of
// an issuer are not in plain form, so a check "is this ours" refuses them
// rather than listing each (docs/security.md T-166).
func TestPlainIssuer(t *testing.T) {
	for _, iss := range []string{
		"https://sts.example",
		"https://sts.example/",
		"HTTPS://STS.EXAMPLE", // case is SameIssuer's
		"https://sts.example:443",
		"https://sts.example:8443/tenant/v2.0",
		"https://sts.example/a/.well-known",
		"https://sts.example/a..b/.c",
		"https://login_1.sts-example.com",
		"http://127.0.0.1:8080",
		"https://[::1]",
		"https://[2001:db8::1]:8443",
		"urn:sts",
		"spiffe://example.org",
		"ci-system",
	} {
		if err := federation.PlainIssuer(iss); err != nil {
			t.Errorf("PlainIssuer(%q) = %v, want nil", iss, err)
		}
	}
	for _, iss := range []string{
		"",
		" https://sts.example",
		"https://sts.example ",
		"https://sts.example\t",
		"https://sts.\nexample",
		"https://sts.example\x7f",
		"https://sts.example\\",
		"https:\\\\sts.example",
		"https://ｓｔｓ.example",
		"https://stś.example",
		"https://%73ts.example",
		"https://sts%2Eexample",
		"https://sts.example/%74",
		"https://sts.example/%2F",
		"https://sts.example?",
		"https://sts.example#",
		"https://sts.example/#x",
		"https://user@sts.example",
		"https://:@sts.example",
		"https://sts.example.",
		"https://sts.example./",
		"https://.sts.example",
		"https://sts..example",
		"https://sts.example!",
		"https://sts.example:",
		"https://sts.example:/",
		"https://sts.example:0443",
		"https://sts.example:0",
		"https://sts.example:65536",
		"https://sts.example/.",
		"https://sts.example/..",
		"https://sts.example/a/..",
		"https://sts.example/./a",
		"https:sts.example",
		"https:/sts.example",
		"https:///sts.example",
		"https://",
		"http://127.1",
		"http://0x7f.0.0.1",
		"http://2130706433",
		"http://127.000.000.001",
		"http://sts.1",
		"https://[0:0:0:0:0:0:0:1]",
		"https://[::0:1]",
		"https://[::1%25eth0]",
		"://sts.example",
	} {
		if err := federation.PlainIssuer(iss); err == nil {
			t.Errorf("PlainIssuer(%q) = nil, want an error", iss)
		}
	}
}
