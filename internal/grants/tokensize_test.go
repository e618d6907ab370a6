package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/tokens"
)

// TestIssuedTokenWithinVerifierLimit: a subject token within the size we
// accept whose act and may_act are carried (with what the mapping copies)
// would make an access token longer than our own verifier accepts
// (tokens.MaxTokenSize). It is refused with a reason of its own rather
// than issued unusable, and the same subject token with a short act is
// exchanged.
func TestIssuedTokenWithinVerifierLimit(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	long := func(c byte) string { return strings.Repeat(string(c), maxActLength) }
	subject := func(big bool) string {
		var chain map[string]any
		for i := range DefaultMaxDelegationDepth {
			m := map[string]any{"sub": long(byte('a' + i))}
			if i < 4 {
				m["iss"] = long(byte('k' + i))
			}
			if chain != nil {
				m["act"] = chain
			}
			chain = m
		}
		c := e.issuer.claims(now, "u1")
		c["act"] = chain
		c["may_act"] = map[string]any{"sub": long('m'), "iss": long('n')}
		if !big { // as long, but not carried
			c["act"] = map[string]any{"sub": "svc"}
			c["padding"] = chain
		}
		c["repository"] = "acme/" + strings.Repeat("x", 245) // copied twice by the mapping
		tok := e.issuer.mint(t, "RS256", c)
		if len(tok) > tokens.MaxTokenSize {
			t.Fatalf("subject token of %d bytes is over the %d we accept", len(tok), tokens.MaxTokenSize)
		}
		return tok
	}

	resp, body := e.post(t, PathToken, exchangeForm(subject(true), "pool", "ci"))
	if resp.StatusCode != http.StatusBadRequest || body["reason"] != ReasonIssuedTokenTooLarge || body["error_description"] != descSubject {
		tok, _ := body["access_token"].(string)
		t.Fatalf("exchange = %d %v %v (issued %d bytes), want 400 %s", resp.StatusCode, body["error"], body["reason"], len(tok), ReasonIssuedTokenTooLarge)
	}
	resp, body = e.post(t, PathToken, exchangeForm(subject(false), "pool", "ci"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange with a short act = %d %v %v", resp.StatusCode, body["error"], body["reason"])
	}
	if _, err := e.verify.VerifyAccessTokenAnyAudience(t.Context(), body["access_token"].(string)); err != nil {
		t.Errorf("issued token refused by our verifier: %v", err)
	}
}
