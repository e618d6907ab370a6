package config

import "testing"

// TestCheckIssuerPath: an issuer's path is served as a prefix of every
// route (docs/configuration.md, issuer), so it holds plain segments only.
// A path that needs escaping, or holds a ServeMux pattern character, was
// accepted and then panicked the server at start ("http://x/a{b") or
// registered a wildcard route ("http://x/{id}").
func TestCheckIssuerPath(t *testing.T) {
	for _, ok := range []string{"https://x.example", "https://x.example/sts", "http://127.0.0.1:8080/a/b-c_d.e~f"} {
		if err := checkIssuer(ok); err != nil {
			t.Errorf("checkIssuer(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"http://x/a{b", "http://x/{id}", "http://x/a%20b", "http://x/a b", "http://x/a//b",
		"http://x/./b", "http://x/a/..", "http://x/a%2Fb", "http://x/$"} {
		if err := checkIssuer(bad); err == nil {
			t.Errorf("checkIssuer(%q) = nil, want an error", bad)
		}
	}
}
