package web_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	xoauth2 "golang.org/x/oauth2"
)

// TestBrowserIPv6LoopbackRedirect (docs/security.md T-145): a native
// application listening on the IPv6 loopback address, the other one
// RFC 8252 §7.3 names and sts registers, gets its code after the person clicks Allow, and its browser back after
// the end-session question's Sign out. Both pages' Content-Security-Policy
// admits their form's answer, a redirect to that address, in form-action;
// it named the source "http://[::1]:port", which CSP cannot express and
// chromium ignores, so form-action was 'self' alone and the browser stayed
// on the page: Allow did nothing. golang.org/x/oauth2 redeems the code, as
// a public client with PKCE.
func TestBrowserIPv6LoopbackRedirect(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	var mu sync.Mutex
	var code, state string
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" { // the browser also asks for /favicon.ico
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		code, state = r.URL.Query().Get("code"), r.URL.Query().Get("state")
		mu.Unlock()
		io.WriteString(w, "<!doctype html><title>CLI</title><h1>Back in the CLI</h1>")
	})}
	go app.Serve(ln)
	t.Cleanup(func() { app.Close() })
	got := func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		c, s := code, state
		code, state = "", ""
		return c, s
	}
	redirect := "http://[::1]:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/cb"

	s := startServer(t)
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "cli-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "CLI", "--public",
		"--redirect-uri", redirect, "--audience", s.URL, "--scope", "openid")
	id := regexp.MustCompile(`^(\S+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("client create printed %q", out)
	}
	conf := &xoauth2.Config{ClientID: id[1], RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInParams}}

	ctx := browser(t)
	do(t, ctx, "sign in to sts", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	verifier := xoauth2.GenerateVerifier()
	do(t, ctx, "consent screen", chromedp.Navigate(conf.AuthCodeURL("st-1", xoauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(button("Allow")))
	do(t, ctx, "allow", chromedp.Click(button("Allow")), chromedp.WaitVisible(heading("Back in the CLI")))
	c, st := got()
	if c == "" || st != "st-1" {
		t.Fatalf("the application got code %q state %q, want a code and state st-1", c, st)
	}
	tok, err := conf.Exchange(t.Context(), c, xoauth2.VerifierOption(verifier))
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}

	// The end-session question, returning to the same address.
	ask := s.URL + "/oauth2/logout?" + url.Values{"client_id": {id[1]}, "post_logout_redirect_uri": {redirect}, "state": {"bye"}}.Encode()
	do(t, ctx, "sign-out question", chromedp.Navigate(ask), chromedp.WaitVisible(heading("Sign out of sts?")))
	do(t, ctx, "sign out", chromedp.Click(button("Sign out")), chromedp.WaitVisible(heading("Back in the CLI")))
	if c, st := got(); c != "" || st != "bye" {
		t.Errorf("after sign-out the application got code %q state %q, want state bye only", c, st)
	}
}
