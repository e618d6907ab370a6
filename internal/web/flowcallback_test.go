package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// pausedAtProvider starts a sign-in through provider "test" in a new
// browser and stops where the browser is sent to the provider: it
// returns the browser and the provider's URL it was sent to.
func pausedAtProvider(t *testing.T, s *server, p *idp) (*http.Client, string) {
	t.Helper()
	b := follower(t)
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), p.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	r := signInWith(t, b, s, "test", "/tokens")
	at := r.header.Get("Location")
	if r.status/100 != 3 || !strings.HasPrefix(at, p.URL) {
		t.Fatalf("the start did not send the browser to the provider: %d %s", r.status, at)
	}
	b.CheckRedirect = nil
	return b, at
}

// TestOIDCUnknownStateKeepsFlow (docs/security.md T-201): a callback
// URL with a state no flow of this browser holds (planted by a link, or
// a stale tab) is refused and leaves the sign-in under way in the
// browser as it was: that sign-in still completes.
func TestOIDCUnknownStateKeepsFlow(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "u-1", "email": "dora@example.com", "email_verified": true})
	b, at := pausedAtProvider(t, s, p)
	if r := get(t, b, s.URL+"/login/oidc/test/callback?state=not-this-browsers&code=x"); r.status != http.StatusUnauthorized {
		t.Fatalf("a callback with an unknown state: %d", r.status)
	}
	if r := get(t, b, at); r.status != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>dora@example.com</strong>") {
		t.Fatalf("the sign-in under way, after a callback with an unknown state: %d\n%.400s", r.status, r.body)
	}
}

// TestOIDCLegacyFlowCookieRead (docs/security.md T-201): a browser that
// began its sign-in before flows had cookies of their own carries its
// flow under the one old name; the callback still reads it there
// (callbackSlot), and the sign-in completes.
func TestOIDCLegacyFlowCookieRead(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "u-1", "email": "dora@example.com", "email_verified": true})
	b, at := pausedAtProvider(t, s, p)
	u, _ := url.Parse(s.URL + "/")
	var moved []*http.Cookie
	for _, c := range b.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "sts_login.") {
			// The flow as an earlier release kept it: the same value under
			// the one name, and no cookie of its own.
			moved = append(moved, &http.Cookie{Name: "sts_login", Value: c.Value, Path: "/"},
				&http.Cookie{Name: c.Name, Value: "", Path: "/", MaxAge: -1})
		}
	}
	if len(moved) != 2 {
		t.Fatalf("the start set %d flow cookies, want 1: %v", len(moved)/2, b.Jar.Cookies(u))
	}
	b.Jar.SetCookies(u, moved)
	if r := get(t, b, at); r.status != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>dora@example.com</strong>") {
		t.Fatalf("a sign-in whose flow is under the old cookie name: %d\n%.400s", r.status, r.body)
	}
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "sts_login" {
			t.Errorf("the old flow cookie is left after its callback")
		}
	}
}
