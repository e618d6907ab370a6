package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestGoogleScopeMustBeString (docs/security.md T-205): scope in Google's
// ExchangeTokenRequest and ExchangeOauthTokenRequest is a string of
// space-delimited scopes, as Google's generated client sends it; Google's
// front end refuses any other JSON type for a string field. An array was
// joined into one, so ["read write"] and ["read","write"] asked for the
// same thing and a body Google refuses was served. Both endpoints now
// refuse it as any other non-string member, before anything is looked up.
func TestGoogleScopeMustBeString(t *testing.T) {
	e := newEnv(t, nil)
	post := func(path, body string) (*http.Response, map[string]any) {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return do(t, r)
	}
	exchange := func(scope string) string {
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		return `{"grantType":"` + oauth2.GrantTypeTokenExchange + `","subjectToken":"` + tok + `","subjectTokenType":"` + oauth2.TokenTypeJWT +
			`","audience":"pools/ci/providers/github","scope":` + scope + `}`
	}
	for _, scope := range []string{`["read"]`, `["read write"]`, `[]`} {
		resp, out := post(PathGoogleToken, exchange(scope))
		if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || out["reason"] != ReasonMalformed || out["access_token"] != nil {
			t.Errorf("/v1/token scope %s = %d %v, want 400 invalid_request %s", scope, resp.StatusCode, out, ReasonMalformed)
		}
	}
	resp, out := post(PathGoogleOAuthToken, `{"grantType":"refresh_token","refreshToken":"x","scope":["read"]}`)
	if resp.StatusCode != http.StatusBadRequest || out["reason"] != ReasonMalformed {
		t.Errorf("/v1/oauthtoken scope array = %d %v, want 400 %s", resp.StatusCode, out, ReasonMalformed)
	}
	// The string Google's client sends is served.
	resp, out = post(PathGoogleToken, exchange(`"read"`))
	if resp.StatusCode != http.StatusOK || out["access_token"] == nil {
		t.Errorf("/v1/token scope \"read\" = %d %v, want 200", resp.StatusCode, out)
	}
}
