package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestGoogleTokenAudienceRequired (docs/security.md T-181): at /v1/token an
// external credential is exchanged only for the provider its audience
// names, as at Google STS, where audience is required for one. Without
// it the pool was picked by the token's unverified iss and aud, as at
// /oauth2/token. One of our own access tokens (x/oauth2's downscope sends
// no audience) and a form naming sts's own pool are served as before.
func TestGoogleTokenAudienceRequired(t *testing.T) {
	e := newEnv(t, nil)
	ext := func() string { return e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "ext-user")) }
	for _, typ := range []string{oauth2.TokenTypeJWT, oauth2.TokenTypeIDToken} {
		form := exchangeForm(ext(), "scope", "read")
		form.Set("subject_token_type", typ)
		resp, out := e.post(t, PathGoogleToken, form)
		desc, _ := out["error_description"].(string)
		if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || !strings.HasPrefix(desc, "audience is required") {
			t.Errorf("form, %s, no audience: %d %v %q, want 400 invalid_request \"audience is required…\"", typ, resp.StatusCode, out["error"], desc)
		}
	}
	body := `{"grantType":"` + oauth2.GrantTypeTokenExchange + `","subjectTokenType":"` + oauth2.TokenTypeJWT +
		`","subjectToken":"` + ext() + `","scope":"read"}`
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	resp, out := do(t, r)
	if desc, _ := out["error_description"].(string); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(desc, "audience is required") {
		t.Errorf("JSON, no audience: %d %v %q, want 400 \"audience is required…\"", resp.StatusCode, out["error"], desc)
	}

	// Served as before: with the audience, with sts's own pool, and our
	// own token without one.
	resp, out = e.post(t, PathGoogleToken, exchangeForm(ext(), "scope", "read", "audience", "pools/ci/providers/github"))
	own, _ := out["access_token"].(string)
	if resp.StatusCode != http.StatusOK || own == "" {
		t.Fatalf("with the audience: %d %v, want a token", resp.StatusCode, out["error"])
	}
	if resp, out := e.post(t, PathGoogleToken, exchangeForm(ext(), "scope", "read", "pool", "ci")); resp.StatusCode != http.StatusOK {
		t.Errorf("with pool=ci: %d %v %v, want a token", resp.StatusCode, out["error"], out["error_description"])
	}
	form := exchangeForm(own, "scope", "read")
	form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
	if resp, out := e.post(t, PathGoogleToken, form); resp.StatusCode != http.StatusOK {
		t.Errorf("our access token, no audience: %d %v %v, want a token", resp.StatusCode, out["error"], out["error_description"])
	}
}
