package introspect_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/oauth2"
)

// TestSecretInQuery: a client's secret or assertion, or a bearer token
// under Google's access_token and oauth_token query parameters, in the
// query string of either introspection path is refused, as token is
// (docs/security.md T-07, T-212). It was ignored and the request answered
// from its body, so the client never learnt that its secret was written
// to every proxy's access log.
func TestSecretInQuery(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	valid, _ := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	for _, path := range []string{introspect.Path, introspect.PathGoogle} {
		for _, name := range []string{"client_secret", "client_assertion", "access_token", "oauth_token", "token;"} {
			t.Run(path+"?"+name, func(t *testing.T) {
				q := url.Values{name: {f.secretA}}.Encode()
				if name == "token;" {
					// A pair the query parser cannot read (a semicolon,
					// which other parsers take as a separator) was
					// skipped, and the token with it.
					q = "token=" + valid + ";alt=json"
				}
				resp, body := f.do(t, request{method: "POST", path: path + "?" + q, contentType: form, body: tokenForm(valid), user: "a", pass: f.secretA})
				var e struct{ Error string }
				_ = json.Unmarshal([]byte(body), &e)
				if resp.StatusCode != 400 || e.Error != oauth2.ErrorInvalidRequest {
					t.Errorf("%s in the query of %s: %d %q, want 400 invalid_request", name, path, resp.StatusCode, e.Error)
				}
			})
		}
	}
}
