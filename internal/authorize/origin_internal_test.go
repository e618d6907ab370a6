package authorize

import "testing"

// TestFormActionSource (docs/security.md T-145): the form-action source of
// a redirect URI names its host when a Content-Security-Policy source can
// (letters, digits, "-", "."), and "*" bound to the scheme and port when it
// cannot (an IPv6 literal, which chromium drops from the policy: the
// browser then stops the redirect after Allow). TestBrowserIPv6LoopbackRedirect
// (internal/web) has chromium judge it.
func TestFormActionSource(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"", ""},
		{"https://app.example/cb", "https://app.example"},
		{"https://App.Example:8443/cb?x=1", "https://App.Example:8443"},
		{"http://127.0.0.1:53177/cb", "http://127.0.0.1:53177"},
		{"http://localhost/cb", "http://localhost"},
		{"http://[::1]:53177/cb", "http://*:53177"},
		{"http://[::1]/cb", "http://*"},
		{"https://[2001:db8::1]/cb", "https://*"},
		{"https://bücher.example/cb", "https://*"},
	} {
		if got := origin(tc.uri); got != tc.want {
			t.Errorf("origin(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}
