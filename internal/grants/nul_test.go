package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

// TestNULInFormRefused (docs/security.md T-108): a NUL character in a
// token endpoint's parameter, the client ID above all, is a bad request on
// both backends. PostgreSQL refuses NUL in text, so a lookup of such a
// client ID came back as a storage failure: 503 with Retry-After (which
// clients retry), an ERROR log line and a storage error counted, for
// anyone, unauthenticated.
func TestNULInFormRefused(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			m := newMatrixEnvOn(t, backendStore(t, backend))
			for _, tc := range []struct {
				name     string
				id       string
				form     url.Values
				statuses []int
			}{
				{"client id in basic auth", "cl\x00ient", url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}}, []int{http.StatusUnauthorized, http.StatusBadRequest}},
				{"client id in the form", "", url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "client_id": {"cl\x00ient"}, "client_secret": {"x"}}, []int{http.StatusUnauthorized, http.StatusBadRequest}},
				{"public client id", "", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "client_id": {"cl\x00ient"}, "refresh_token": {"x"}}, []int{http.StatusUnauthorized, http.StatusBadRequest}},
				{"pool", "", exchangeForm(m.subjectToken(t, "mx"), "pool", "m\x00x"), []int{http.StatusUnauthorized, http.StatusBadRequest}},
			} {
				status, body := m.postAs(t, tc.id, "secret", tc.form)
				ok := false
				for _, s := range tc.statuses {
					ok = ok || status == s
				}
				if !ok {
					t.Errorf("%s: %d %v %v, want a refusal of the request (4xx), not a storage failure", tc.name, status, body["error"], body["error_description"])
				}
			}
		})
	}
}
