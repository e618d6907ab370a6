package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestTokenMaterialInURL: a refresh token, an authorization code or its
// verifier, or a token under the camelCase name of Google's JSON body, in
// the query string of a token endpoint is refused as token_in_url, as
// subject_token is (docs/security.md T-07, T-212). It was ignored and the
// request served from its body: the client never learnt that its
// long-lived refresh token was written to every proxy's and load
// balancer's access log. The refusal changes nothing: the refresh token
// still works.
func TestTokenMaterialInURL(t *testing.T) {
	g := newGoogleRefreshEnv(t)
	rt := g.issue()
	names := []string{"refresh_token", "refreshToken", "code", "code_verifier", "codeVerifier",
		"subjectToken", "actorToken", "access_token", "oauth_token", "client_secret", "client_assertion"}
	for _, path := range []string{PathGoogleOAuthToken, PathToken, PathConfluentToken} {
		for _, name := range names {
			t.Run(path+"?"+name, func(t *testing.T) {
				form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
				q := url.Values{name: {rt}}.Encode()
				r, _ := http.NewRequest(http.MethodPost, g.srv.URL+path+"?"+q, strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.SetBasicAuth(g.clientID, g.secret)
				resp, out := do(t, r)
				if path == PathConfluentToken {
					// Confluent's error shape: errors[0].reason.
					if errs, _ := out["errors"].([]any); len(errs) > 0 {
						if e, _ := errs[0].(map[string]any); e != nil {
							out["reason"] = e["reason"]
						}
					}
				}
				if resp.StatusCode != http.StatusBadRequest || out["reason"] != ReasonTokenInURL {
					t.Errorf("%s in the query of %s: %d %v (%v), want 400 with reason %s", name, path, resp.StatusCode, out["error"], out["reason"], ReasonTokenInURL)
				}
			})
		}
	}
	// The Google exchange path judges the same names.
	resp, out := g.post(rt)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the refresh token after the refusals: %d %v, want 200", resp.StatusCode, out["error"])
	}
	e := g.env
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "ext-user"))
	for _, name := range []string{"subjectToken", "actorToken", "refresh_token"} {
		form := exchangeForm(tok, "audience", "pools/ci/providers/github")
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken+"?"+url.Values{name: {tok}}.Encode(), strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, out := do(t, r)
		if resp.StatusCode != http.StatusBadRequest || out["reason"] != ReasonTokenInURL {
			t.Errorf("%s in the query of %s: %d %v (%v), want 400 with reason %s", name, PathGoogleToken, resp.StatusCode, out["error"], out["reason"], ReasonTokenInURL)
		}
	}
}
