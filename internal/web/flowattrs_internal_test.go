package web

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestOIDCFlowCookieAttributes (docs/security.md T-201): on an https
// issuer each flow's cookie is named __Host-sts_login.<12 hex digits of
// its state's digest> and carries what the __Host- prefix demands (Path=/,
// Secure, no Domain), HttpOnly and SameSite=Lax.
func TestOIDCFlowCookieAttributes(t *testing.T) {
	h := &Handler{signedIn: &SignedIn{secure: true}}
	f := oidcFlow{Provider: "corp", State: "some-state", Nonce: "n", Verifier: "v", ReturnTo: "/tokens", Expires: 1}
	w := httptest.NewRecorder()
	if !h.keepFlow(w, httptest.NewRequest("POST", "/login/oidc/corp", nil), f) {
		t.Fatal("a short flow refused")
	}
	d := sha256.Sum256([]byte(f.State))
	want := "__Host-sts_login." + hex.EncodeToString(d[:6])
	raw := w.Header()["Set-Cookie"]
	if len(raw) != 1 {
		t.Fatalf("a short flow set %d cookies: %q", len(raw), raw)
	}
	c, err := http.ParseSetCookie(raw[0])
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^__Host-sts_login\.[0-9a-f]{12}$`).MatchString(c.Name) || c.Name != want {
		t.Errorf("the flow cookie is named %q, want %q", c.Name, want)
	}
	if c.Path != "/" || !c.Secure || c.Domain != "" || strings.Contains(strings.ToLower(raw[0]), "domain=") ||
		!c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge != int(loginFlowTTL/time.Second) {
		t.Errorf("the flow cookie's attributes: %s", raw[0])
	}
}
