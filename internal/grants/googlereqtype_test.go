package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestGoogleRequestedTokenTypeAccessTokenOnly (docs/security.md T-203):
// Google STS documents requested_token_type on /v1/token as "Must be
// urn:ietf:params:oauth:token-type:access_token" and issued_token_type as
// always that value. …:jwt was issued there as at /oauth2/token, with an
// issued_token_type no Google client asks for or expects. It is refused,
// form and JSON alike, and nothing is issued; access_token, or none, is
// served as before.
func TestGoogleRequestedTokenTypeAccessTokenOnly(t *testing.T) {
	e := newEnv(t, nil)
	const aud = "pools/ci/providers/github"
	postJSON := func(body string) (*http.Response, map[string]any) {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return do(t, r)
	}
	jsonBody := func(tok, rtt string) string {
		return `{"grantType":"` + oauth2.GrantTypeTokenExchange + `","subjectToken":"` + tok + `","subjectTokenType":"` + oauth2.TokenTypeJWT +
			`","audience":"` + aud + `","requestedTokenType":"` + rtt + `"}`
	}
	for _, rtt := range []string{oauth2.TokenTypeJWT, oauth2.TokenTypeIDToken, oauth2.TokenTypeRefreshToken, googleIntermediaryTokenType} {
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		resp, out := e.post(t, PathGoogleToken, exchangeForm(tok, "audience", aud, "requested_token_type", rtt))
		if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || out["reason"] != ReasonRequestedTypeUnsupp || out["access_token"] != nil {
			t.Errorf("form requested_token_type %s = %d %v, want 400 invalid_request %s", rtt, resp.StatusCode, out, ReasonRequestedTypeUnsupp)
		}
		// The description names the one type served; Google also serves
		// the intermediary token of client-side access boundaries, which
		// sts does not implement, and says so rather than "as Google".
		desc, _ := out["error_description"].(string)
		if !strings.Contains(desc, "the supported one is "+oauth2.TokenTypeAccessToken) ||
			(rtt == googleIntermediaryTokenType) != strings.Contains(desc, "client-side Credential Access Boundaries are not implemented") {
			t.Errorf("form requested_token_type %s: error_description %q, want it to name %s (and, for the intermediary token, client-side boundaries)", rtt, desc, oauth2.TokenTypeAccessToken)
		}
		tok = e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		resp, out = postJSON(jsonBody(tok, rtt))
		if resp.StatusCode != http.StatusBadRequest || out["reason"] != ReasonRequestedTypeUnsupp || out["access_token"] != nil {
			t.Errorf("JSON requestedTokenType %s = %d %v, want 400 %s", rtt, resp.StatusCode, out, ReasonRequestedTypeUnsupp)
		}
	}
	// What Google's clients send, and nothing, still get the access token.
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	resp, out := postJSON(jsonBody(tok, oauth2.TokenTypeAccessToken))
	if resp.StatusCode != http.StatusOK || out["issued_token_type"] != oauth2.TokenTypeAccessToken {
		t.Errorf("requestedTokenType access_token = %d %v, want 200", resp.StatusCode, out)
	}
	tok = e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	resp, out = e.post(t, PathGoogleToken, exchangeForm(tok, "audience", aud))
	if resp.StatusCode != http.StatusOK || out["issued_token_type"] != oauth2.TokenTypeAccessToken {
		t.Errorf("no requested_token_type = %d %v, want 200", resp.StatusCode, out)
	}
}
