package grants

import (
	"net/http"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

// TestOneTimeJTIWithNULRefused (docs/security.md T-234): a one-time-use
// provider's token whose jti holds a NUL character ("\u0000" in its
// JSON) is a token without a usable jti, refused as one on both
// backends. Its jti became the used-token key, which PostgreSQL refuses
// in text, so the exchange was a storage failure: 503 with Retry-After
// (which clients retry, for ever), logged and counted as one, for a
// token that can never be spent. The provider's other tokens are served
// as before.
func TestOneTimeJTIWithNULRefused(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := oneTimeEnv(t, backendStore(t, backend))
			resp, body := e.post(t, PathToken, exchangeForm(e.onceToken(t, "job\x00-1")))
			if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidRequest || body["reason"] != ReasonSubjectJTIMissing || body["access_token"] != nil {
				t.Fatalf("jti with a NUL = %d %v %v (Retry-After %q), want 400 %s %s and no token",
					resp.StatusCode, body["error"], body["reason"], resp.Header.Get("Retry-After"), oauth2.ErrorInvalidRequest, ReasonSubjectJTIMissing)
			}
			if code, reason := e.exchangeStatus(t, e.onceToken(t, "job-1")); code != http.StatusOK {
				t.Errorf("then a jti without one = %d %s, want 200", code, reason)
			}
		})
	}
}
