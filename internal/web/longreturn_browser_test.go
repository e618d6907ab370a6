package web_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	xoauth2 "golang.org/x/oauth2"
)

// TestBrowserLongRequestThroughProvider (docs/security.md T-184): an
// authorization request with a long state, within what /oauth2/authorize
// takes (1024 bytes), comes back after the person signs in through an
// upstream provider, in chromium, which drops a cookie over 4096 bytes:
// the sign-in's flow carried the whole request in one cookie, which was
// dropped, and the callback failed ("Sign-in did not complete") every
// time it was tried.
func TestBrowserLongRequestThroughProvider(t *testing.T) {
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "email", "default"))
	cb := newCallback(t)
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", cb.URL+"/cb", "--audience", s.URL, "--scope", "openid", "--scope", "email")
	id := regexp.MustCompile(`^(\S+)\n`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("client create printed %q", out)
	}
	conf := &xoauth2.Config{ClientID: id[1], RedirectURL: cb.URL + "/cb", Scopes: []string{"openid", "email"},
		Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token"}}
	// A state as some relying parties make it, JSON of where to go back
	// to: 990 bytes, three times that once percent-encoded.
	state := strings.Repeat(`{"k":"v/"},`, 90)
	u := conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam("nonce", "n-1"))
	idp.signInAs(map[string]any{"sub": "u-9", "email": "erin@example.com", "email_verified": true})

	ctx := browser(t)
	do(t, ctx, "the request, signed out", chromedp.Navigate(u), chromedp.WaitVisible(heading("Sign in")))
	do(t, ctx, "sign in with the provider", chromedp.Click(button("Sign in with Test IdP")), chromedp.WaitVisible(button("Allow")))
	if h := run(t, ctx, "after the provider", chromedp.Text(chromedp.CSS("h1"))); !strings.Contains(h, "Notes") {
		t.Fatalf("after the provider the browser shows %q, want the consent screen of the request\n%s", h,
			run(t, ctx, "page", chromedp.Text(chromedp.CSS("main"))))
	}
	do(t, ctx, "allow", chromedp.Click(button("Allow")), chromedp.WaitVisible(heading("Signed in to Notes")))
	if code, got := cb.got(); code == "" || got != state {
		t.Fatalf("the application got code %q state %q, want a code and its state back", code, got)
	}
}
