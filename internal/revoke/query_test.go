package revoke_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/revoke"
)

// TestRevokeSecretInQuery (docs/security.md T-212): the revocation endpoint
// checked only token in the query, through URL.Query, which skips a pair
// holding a ';': ?token=…;alt=json was served from the body, and the
// client's own client_secret, client_assertion, or a bearer under
// access_token/oauth_token in the query was ignored likewise. Each is
// 400 invalid_request now, before the body is read: nothing is revoked.
func TestRevokeSecretInQuery(t *testing.T) {
	f := newFixture(t, nil)
	for _, name := range []string{"token;", "client_secret", "client_assertion", "access_token", "oauth_token"} {
		t.Run(name, func(t *testing.T) {
			own, ownClaims := f.mint(t, f.keys, "a")
			q := url.Values{name: {f.secretA}}.Encode()
			if name == "token;" {
				q = "token=" + own + ";alt=json"
			}
			resp, body := f.do(t, request{method: "POST", path: revoke.Path + "?" + q, contentType: form, body: tokenForm(own), user: "a", pass: f.secretA})
			var e struct{ Error string }
			_ = json.Unmarshal([]byte(body), &e)
			if resp.StatusCode != 400 || e.Error != oauth2.ErrorInvalidRequest {
				t.Errorf("%s in the query of %s: %d %q, want 400 invalid_request", name, revoke.Path, resp.StatusCode, e.Error)
			}
			if f.revoked(t, ownClaims) {
				t.Errorf("%s in the query: the token was revoked, want nothing changed", name)
			}
		})
	}
}
