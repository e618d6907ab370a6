package web_test

import (
	"crypto/rand"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

// rpPage is a relying party's page that sends the authorization request
// by POST (OIDC Core §3.1.2.1): a form of hidden fields to the
// authorization endpoint.
var rpPage = template.Must(template.New("rp").Parse(`<!doctype html><title>Notes</title>
<form method="post" action="{{.Action}}">
{{- range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<button type="submit">Sign in with sts</button></form>`))

// TestBrowserAuthorizationRequestByPost: a relying party on another site
// (http://localhost:PORT, sts at http://127.0.0.1:…) sends its
// authorization request as a form POST, as OIDC Core §3.1.2.1 lets it. In
// a real chromium, with a person signed in to sts, the POST reaches the
// consent screen, not a sign-in page: the answer is the GET with the same
// parameters, to which the browser sends the SameSite=Lax session cookie
// it withholds from another site's POST. Allow brings the code back, which
// x/oauth2 redeems and whose ID token go-oidc verifies (nonce); with the
// consent remembered, prompt=none by POST answers at once with a code
// (docs/security.md T-153).
func TestBrowserAuthorizationRequestByPost(t *testing.T) {
	s := startServer(t)
	var (
		mu          sync.Mutex
		code, state string
	)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/start":
			_ = rpPage.Execute(w, struct {
				Action string
				Fields url.Values
			}{s.URL + "/oauth2/authorize", r.URL.Query()})
		case "/cb":
			mu.Lock()
			code, state = r.URL.Query().Get("code"), r.URL.Query().Get("state")
			mu.Unlock()
			_, _ = w.Write([]byte("<!doctype html><title>Notes</title><h1>Signed in to Notes</h1>"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(rp.Close)
	got := func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		c, st := code, state
		code, state = "", ""
		return c, st
	}
	_, port, _ := net.SplitHostPort(rp.Listener.Addr().String())
	home := "http://localhost:" + port
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", home+"/cb", "--audience", s.URL, "--scope", "openid")
	id := regexp.MustCompile(`^(\S+)\n`).FindStringSubmatch(out)
	sec := regexp.MustCompile(`\n(sts_cs_\S+)$`).FindStringSubmatch(out)
	if id == nil || sec == nil {
		t.Fatalf("client create printed %q", out)
	}
	conf := &xoauth2.Config{ClientID: id[1], ClientSecret: sec[1], RedirectURL: home + "/cb", Scopes: []string{"openid"},
		Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInHeader}}
	provider, err := oidc.NewProvider(t.Context(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	// start is the relying party's page for a new request.
	start := func(opts ...xoauth2.AuthCodeOption) (page, verifier, nonce, st string) {
		verifier, nonce, st = xoauth2.GenerateVerifier(), rand.Text(), rand.Text()
		u, _ := url.Parse(conf.AuthCodeURL(st, append(opts, xoauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))...))
		return home + "/start?" + u.RawQuery, verifier, nonce, st
	}

	ctx := browser(t)
	do(t, ctx, "sign in to sts", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))

	page, verifier, nonce, st := start()
	do(t, ctx, "the relying party's page", chromedp.Navigate(page), chromedp.WaitVisible(button("Sign in with sts")))
	do(t, ctx, "POST to the authorization endpoint", chromedp.Click(button("Sign in with sts")), chromedp.WaitVisible(button("Allow")))
	do(t, ctx, "allow", chromedp.Click(button("Allow")), chromedp.WaitVisible(heading("Signed in to Notes")))
	c, gotState := got()
	if c == "" || gotState != st {
		t.Fatalf("redirect brought code %q state %q, want a code and state %q", c, gotState, st)
	}
	tok, err := conf.Exchange(t.Context(), c, xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: id[1]}).Verify(t.Context(), raw)
	if err != nil || idt.Nonce != nonce {
		t.Fatalf("go-oidc Verify = %+v, %v; want nonce %q", idt, err, nonce)
	}

	page, verifier, _, st = start(xoauth2.SetAuthURLParam("prompt", "none"))
	do(t, ctx, "the relying party's silent request", chromedp.Navigate(page), chromedp.WaitVisible(button("Sign in with sts")))
	do(t, ctx, "POST prompt=none", chromedp.Click(button("Sign in with sts")), chromedp.WaitVisible(heading("Signed in to Notes")))
	c, gotState = got()
	if c == "" || gotState != st {
		t.Fatalf("prompt=none by POST brought code %q state %q, want a code and state %q", c, gotState, st)
	}
	if _, err := conf.Exchange(t.Context(), c, xoauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("x/oauth2 Exchange (prompt=none): %v", err)
	}
}
