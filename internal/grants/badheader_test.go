package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
)

// TestUnreadableAuthorizationRefused (docs/security.md T-126): HTTP Basic
// credentials that do not read (not base64, no colon, no client ID) are
// invalid_client with a Basic challenge, never taken for an anonymous
// request, even at a pool that admits anonymous callers. Without the
// header, or with a scheme that is not client authentication (a Bearer
// token, as Google's generated clients send from ambient credentials),
// the same request is issued.
func TestUnreadableAuthorizationRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: []byte(strings.Repeat("p", 32))}}
	send := func(authz string) (int, string, map[string]any) {
		c := e.issuer.claims(time.Now(), "someone")
		c["aud"] = "sts"
		form := url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {e.issuer.mint(t, "RS256", c)},
			"subject_token_type": {oauth2.TokenTypeJWT}, "pool": {"ci"}}
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		resp, out := do(t, r)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), out
	}
	for _, authz := range []string{"", "Bearer sometoken"} {
		if status, _, out := send(authz); status != 200 {
			t.Fatalf("anonymous exchange at an open pool, Authorization %q: %d %v", authz, status, out)
		}
	}
	for _, authz := range []string{
		"Basic !!!not-base64!!!",
		"Basic " + "bm9jb2xvbg", // "nocolon", unpadded
		"Basic bm9jb2xvbg==",    // "nocolon"
		"Basic Og==",            // ":" (no client ID)
		"Basic",
		"basic bm9jb2xvbg==",
	} {
		status, challenge, out := send(authz)
		if status != 401 || out["error"] != oauth2.ErrorInvalidClient || !strings.HasPrefix(challenge, "Basic") {
			t.Errorf("Authorization %q: %d %q %v, want 401 invalid_client with a Basic challenge", authz, status, challenge, out)
		}
	}
}
