package grants

import (
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestExternalExchangeHasNoEmptyPrincipal: a token exchanged from an
// external token, through a pool bound to no principal, acts as no
// principal of ours, so it carries no principal claim rather than an
// empty one, whichever encoder wrote it (the hand-written one, or
// encoding/json when there is an act claim), at both endpoints
// (docs/design.md "Access tokens").
func TestExternalExchangeHasNoEmptyPrincipal(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(now, "u1"))
	actor := e.issuer.mint(t, "ES256", e.issuer.claims(now, "bot"))
	confluent := exchangeForm(tok, "identity_pool_id", "ci", "api_version", "sts/v1", "kind", "TokenExchangeRequest")
	for name, c := range map[string]struct {
		path string
		form url.Values
	}{
		"standard":   {PathToken, exchangeForm(tok)},
		"delegation": {PathToken, exchangeForm(tok, "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT)},
		"confluent":  {PathConfluentToken, confluent},
	} {
		resp, body := e.post(t, c.path, c.form)
		at, _ := body["access_token"].(string)
		if resp.StatusCode != 200 || at == "" {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, body)
		}
		claims := payload(t, at)
		if p, ok := claims["principal"]; ok {
			t.Errorf("%s: principal = %q, want no principal claim", name, p)
		}
		if claims["sub"] != "repo:acme/app" || claims["org_id"] != "acme" || claims["pool"] != "ci" {
			t.Errorf("%s: claims = %v", name, claims)
		}
		if c, err := e.verify.VerifyAccessTokenAnyAudience(t.Context(), at); err != nil || c.Principal != "" {
			t.Errorf("%s: our verifier reads it as %+v, %v", name, c, err)
		}
	}
}
