package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestScopeDelimitedBySpaceOnly (docs/security.md T-235): RFC 6749 §3.3
// delimits scope tokens by a space (%x20) alone, and no other character
// at or below %x20, nor any outside ASCII, belongs in one. The token
// endpoint split scope at any Unicode white space, so "read\u00a0write"
// or "read\twrite", one malformed token to the client, to a proxy or to
// a gateway rule that splits by the RFC, was granted as the two scopes
// read and write (and echoed as matching, no scope in the answer). Such
// a scope is now 400 invalid_scope (scope_invalid) with no token; spaces,
// repeated or around the list, still delimit.
func TestScopeDelimitedBySpaceOnly(t *testing.T) {
	e := newEnv(t, nil)
	tok := func() string { return e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1")) }
	for name, scope := range map[string]string{
		"tab": "read\twrite", "line feed": "read\nwrite", "carriage return": "read\rwrite",
		"vertical tab": "read\vwrite", "form feed": "read\fwrite",
		"no-break space": "read\u00a0write", "em space": "read\u2003write", "ideographic space": "read\u3000write",
		"next line": "read\u0085write",
	} {
		resp, body := e.post(t, PathToken, exchangeForm(tok(), "pool", "ci", "scope", scope))
		if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidScope || body["reason"] != ReasonScopeInvalid || body["access_token"] != nil {
			t.Errorf("scope %q (%s) = %d %v %v scope %v, want 400 %s %s and no token",
				scope, name, resp.StatusCode, body["error"], body["reason"], body["scope"], oauth2.ErrorInvalidScope, ReasonScopeInvalid)
		}
	}
	for _, scope := range []string{"read write", "read  write", " read write "} {
		resp, body := e.post(t, PathToken, exchangeForm(tok(), "pool", "ci", "scope", scope))
		at, _ := body["access_token"].(string)
		if resp.StatusCode != http.StatusOK || at == "" {
			t.Errorf("scope %q = %d %v %v, want 200", scope, resp.StatusCode, body["error"], body["reason"])
			continue
		}
		if got := accessPayload(t, at).Scope; got != "read write" {
			t.Errorf("scope %q: issued scope %q, want %q", scope, got, "read write")
		}
	}
}
