package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
)

// TestMappedTextWithNULRefused (docs/security.md T-251): a subject token
// whose sub, or a claim a pool maps into the subject, holds a NUL
// character ("\u0000" in its JSON, valid in a JWT) is refused at the
// mapping on both backends, with or without offline_access. With
// offline_access the subject became the refresh family's stored subject,
// which PostgreSQL refuses in text: 503 with Retry-After (retried by
// clients for ever), an ERROR log line, for a token that could never be
// served, while SQLite began the family, and without offline_access both
// served it. Other tokens of the provider are served as before.
func TestMappedTextWithNULRefused(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			o := newOfflineEnvOn(t, backendStore(t, backend))
			e := o.env
			for _, scope := range []string{"read offline_access", "read"} {
				claims := e.issuer.claims(time.Now(), "u\x001")
				claims["aud"] = "offline"
				resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "offline", "scope", scope), true)
				if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidRequest ||
					body["reason"] != string(policy.ReasonIdentityInvalid) || body["access_token"] != nil || body["refresh_token"] != nil {
					t.Errorf("scope %q, sub with a NUL = %d %v %v (Retry-After %q), want 400 %s %s and nothing issued",
						scope, resp.StatusCode, body["error"], body["reason"], resp.Header.Get("Retry-After"), oauth2.ErrorInvalidRequest, policy.ReasonIdentityInvalid)
				}
			}
			claims := e.issuer.claims(time.Now(), "u1")
			claims["aud"] = "offline"
			if resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "offline", "scope", "read offline_access"), true); resp.StatusCode != http.StatusOK || body["refresh_token"] == nil {
				t.Errorf("then a sub without one = %d %v %v, want 200 and a refresh token", resp.StatusCode, body["error"], body["reason"])
			}
			// A claim mapped into the subject: pool ci maps
			// "repo:" + assertion.repository.
			claims = e.issuer.claims(time.Now(), "u1")
			claims["repository"] = "acme/a\x00pp"
			resp, body := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "ci"))
			if resp.StatusCode != http.StatusBadRequest || body["reason"] != string(policy.ReasonMappingInvalid) || body["access_token"] != nil {
				t.Errorf("mapped subject with a NUL = %d %v %v, want 400 %s and no token", resp.StatusCode, body["error"], body["reason"], policy.ReasonMappingInvalid)
			}
		})
	}
}
