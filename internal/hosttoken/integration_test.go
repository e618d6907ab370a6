package hosttoken_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/hosttoken"
)

// TestIntegrationTokenURL (docs/security.md F-77): an integration whose
// token_url the refresh client would never call is refused when the
// configuration is loaded, naming the URL, not at its first refresh: the
// rule is the refresh client's own (federation.ClientOptions.CheckURL):
// https, or with federation.allow_loopback plain http to a loopback host.
func TestIntegrationTokenURL(t *testing.T) {
	t.Parallel()
	const id = "6f1c1b3e-2a7d-4c55-9e1e-0a8c5b1d2e3f"
	load := func(tokenURL string, allowLoopback bool) error {
		_, err := hosttoken.LoadIntegrations(map[string]hosttoken.IntegrationConfig{id: {TokenURL: tokenURL, ClientID: "c"}},
			federation.ClientOptions{AllowLoopback: allowLoopback, AllowHTTP: allowLoopback}.CheckURL)
		return err
	}
	for _, tc := range []struct {
		url          string
		ok, loopback bool // accepted without / with federation.allow_loopback
	}{
		{"https://github.com/login/oauth/access_token", true, true},
		{"https://gitlab.example.com:8443/oauth/token", true, true},
		{"http://github.com/login/oauth/access_token", false, false},
		{"http://10.0.0.5/oauth/token", false, false},
		{"http://127.0.0.1:8080/token", false, true},
		{"http://[::1]:8080/token", false, true},
		{"http://localhost:8080/token", false, true},
		{"https://127.0.0.1/token", false, true},
		{"https://169.254.169.254/token", false, false},
		{"https://10.0.0.5/oauth/token", false, false},
		{"ftp://github.com/token", false, false},
		{"https://", false, false},
		{"github.com/login/oauth/access_token", false, false},
		{"https://user:pass@github.com/login/oauth/access_token", false, false},
		{"", false, false},
	} {
		for allow, want := range map[bool]bool{false: tc.ok, true: tc.loopback} {
			err := load(tc.url, allow)
			if (err == nil) != want {
				t.Errorf("token_url %q, allow_loopback %v: error %v, want accepted %v", tc.url, allow, err, want)
			}
			if err != nil && (!strings.Contains(err.Error(), "token_url") || !strings.Contains(err.Error(), id)) {
				t.Errorf("token_url %q: error %q does not name the integration and token_url", tc.url, err)
			}
			if err != nil && strings.Contains(err.Error(), "pass") {
				t.Errorf("token_url %q: error %q repeats the URL's password", tc.url, err)
			}
		}
	}
}

// TestIntegrationTokenURLIsWhatRefreshCalls: a loopback http token_url
// LoadIntegrations accepts with allow_loopback is one the refresh client
// built from the same options calls (a real token endpoint answers), and
// the same URL without allow_loopback, which LoadIntegrations refuses, is
// one that client refuses to call: one rule, at load and at refresh.
func TestIntegrationTokenURLIsWhatRefreshCalls(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, "ghr_initial")
	for _, allow := range []bool{true, false} {
		opts := federation.ClientOptions{AllowLoopback: allow, AllowHTTP: allow}
		integ, loadErr := hosttoken.LoadIntegrations(map[string]hosttoken.IntegrationConfig{integrationID: {TokenURL: srv.URL, ClientID: "client-1"}}, opts.CheckURL)
		req, err := httpPost(t, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp, callErr := federation.NewHTTPClient(opts).Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		if (loadErr == nil) != (callErr == nil) {
			t.Errorf("allow_loopback %v: LoadIntegrations error %v (%d integrations), the refresh client's call error %v; want both or neither",
				allow, loadErr, len(integ), callErr)
		}
	}
}

func httpPost(t *testing.T, u string) (*http.Request, error) {
	t.Helper()
	return http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader("grant_type=refresh_token&refresh_token=ghr_initial"))
}
