package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestReexchangeDelegationCapLowered: token_exchange.max_delegation_depth
// is the longest chain (act) a token exchange issues, as it is now
// (docs/security.md T-233). A token of ours carrying a chain the cap
// allowed when it was issued was re-exchanged without an actor_token,
// after the operator lowered the cap, for a token carrying the whole
// chain: only an exchange with an actor, and a refresh, looked at the
// cap. Re-exchange now refuses it (400 invalid_request,
// delegation_too_deep, the subject token at fault) and nothing is
// issued; raising the cap again serves it.
func TestReexchangeDelegationCapLowered(t *testing.T) {
	e := newEnv(t, nil)
	sc := e.issuer.claims(time.Now(), "u1")
	sc["act"] = map[string]any{"sub": "a3", "act": map[string]any{"sub": "a2", "act": map[string]any{"sub": "a1"}}}
	resp, body := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "ci"))
	own, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || own == "" {
		t.Fatalf("exchange of a delegated subject token = %d %v %v", resp.StatusCode, body["error"], body["reason"])
	}
	reexchange := func(t *testing.T) (*http.Response, map[string]any) {
		t.Helper()
		v := exchangeForm(own)
		v.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		return e.post(t, PathToken, v)
	}

	e.grant.MaxDelegationDepth = 2 // the operator lowers the cap
	resp, body = reexchange(t)
	if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidRequest || body["reason"] != ReasonDelegationTooDeep || body["access_token"] != nil {
		n := 0
		if tok, ok := body["access_token"].(string); ok {
			n = actDepth(accessPayload(t, tok).Act)
		}
		t.Fatalf("re-exchange under a cap of 2 = %d %v %v (a chain of %d actors), want 400 %s %s and no token",
			resp.StatusCode, body["error"], body["reason"], n, oauth2.ErrorInvalidRequest, ReasonDelegationTooDeep)
	}

	e.grant.MaxDelegationDepth = 3 // raised again: exactly the chain
	resp, body = reexchange(t)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("re-exchange under a cap of 3 = %d %v %v, want 200", resp.StatusCode, body["error"], body["reason"])
	}
	if n := actDepth(accessPayload(t, tok).Act); n != 3 {
		t.Errorf("re-exchanged token carries a chain of %d actors, want 3", n)
	}
}
