package web_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOIDCFlowCookiesFitABrowser (docs/security.md T-184): the sign-in's
// flow, carrying a long page to return to, is spread over cookies a
// browser keeps (4096 bytes each, name and value), the sign-in through
// the provider comes back to that page, and a page too long to carry is
// refused before the provider is asked.
func TestOIDCFlowCookiesFitABrowser(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "u-8", "email": "fay@example.com", "email_verified": true})
	long := "/tokens?x=" + incompressible(4<<10) // random: the flow's compression does not shorten it

	b := newPerson(t, s)
	page := b.do(t, http.MethodGet, "/login", nil, nil)
	m := startFormRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("the sign-in page carries no anti-CSRF value:\n%s", page.body)
	}
	r := b.do(t, http.MethodPost, "/login/oidc/test", url.Values{"csrf": {m[1]}, "return_to": {long}}, nil)
	if r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), p.URL) {
		t.Fatalf("start with a 4 KB return_to: %d to %q, want the provider", r.status, r.header.Get("Location"))
	}
	flow := 0
	for _, c := range r.header.Values("Set-Cookie") {
		nameValue, _, _ := strings.Cut(c, ";")
		if strings.HasPrefix(nameValue, "sts_login") {
			flow++
			if len(nameValue) > 4096 {
				t.Errorf("a flow cookie of %d bytes, which a browser drops: %.60s…", len(nameValue), nameValue)
			}
		}
	}
	if flow < 2 {
		t.Errorf("%d flow cookies for a 4 KB return_to, want it spread over several", flow)
	}
	// Through the provider and back (the jar holds the cookies), to the
	// page as it was asked.
	b.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), s.URL+"/tokens") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	r = (&person{c: b.c, s: &server{}}).do(t, http.MethodGet, r.header.Get("Location"), nil, nil)
	if got := r.header.Get("Location"); r.status != http.StatusSeeOther || got != long {
		t.Fatalf("back from the provider: %d to %.80q, want the long return_to", r.status, got)
	}

	// Too long to carry: refused here, the provider not asked.
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p.mu.Lock()
	p.Seen = nil
	p.mu.Unlock()
	m = startFormRE.FindStringSubmatch(b.do(t, http.MethodGet, "/login", nil, nil).body)
	r = b.do(t, http.MethodPost, "/login/oidc/test", url.Values{"csrf": {m[1]}, "return_to": {"/tokens?x=" + incompressible(16<<10)}}, nil)
	if r.status != http.StatusBadRequest || strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "sts_login") ||
		!strings.Contains(r.body, "too long") {
		t.Errorf("start with a 16 KB return_to: %d, want 400 and no flow\n%s", r.status, r.body)
	}
	if p.seen() != nil {
		t.Errorf("the provider was asked: %v", p.seen())
	}
}

// incompressible is n bytes of random base64url, which the flow's
// compression cannot make much shorter.
func incompressible(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
