package web_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

// callback is a registered web application's redirect URI: it records
// the code and state the browser brings back.
type callback struct {
	*httptest.Server
	mu          sync.Mutex
	code, state string
}

func newCallback(t *testing.T) *callback {
	c := &callback{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" { // the browser also asks for /favicon.ico
			http.NotFound(w, r)
			return
		}
		c.mu.Lock()
		c.code, c.state = r.URL.Query().Get("code"), r.URL.Query().Get("state")
		c.mu.Unlock()
		io.WriteString(w, "<!doctype html><title>Notes</title><h1>Signed in to Notes</h1>")
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *callback) got() (code, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	code, state, c.code, c.state = c.code, c.state, "", ""
	return code, state
}

// TestBrowserAuthorizationCode: a person signed in to sts in a real
// browser signs in to a registered web application with the
// authorization-code flow and PKCE. The consent screen names the
// application; the code comes back to the application's redirect URI and
// is redeemed with golang.org/x/oauth2 (its PKCE verifier option), the ID
// token verified with go-oidc (nonce), the next sign-in skips the
// remembered consent and is redeemed at Google's /v1/oauthtoken, and
// withdrawing the consent on /tokens brings the screen back.
func TestBrowserAuthorizationCode(t *testing.T) {
	s := startServer(t)
	cb := newCallback(t)
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", cb.URL+"/cb", "--audience", s.URL, "--scope", "openid", "--scope", "email")
	id := regexp.MustCompile(`^(\S+)\n`).FindStringSubmatch(out) // the ID, then the secret
	sec := regexp.MustCompile(`\n(sts_cs_\S+)$`).FindStringSubmatch(out)
	if id == nil || sec == nil {
		t.Fatalf("client create printed %q", out)
	}
	conf := &xoauth2.Config{ClientID: id[1], ClientSecret: sec[1], RedirectURL: cb.URL + "/cb", Scopes: []string{"openid", "email"},
		Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInHeader}}
	provider, err := oidc.NewProvider(t.Context(), s.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idTokens := provider.Verifier(&oidc.Config{ClientID: id[1]})

	ctx := browser(t)
	do(t, ctx, "sign in to sts", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))

	// authorize starts a sign-in at the application and returns the
	// verifier and nonce it keeps.
	authorize := func(t *testing.T) (url, verifier, nonce, state string) {
		verifier, nonce, state = xoauth2.GenerateVerifier(), rand.Text(), rand.Text()
		return conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", nonce)), verifier, nonce, state
	}

	u, verifier, nonce, state := authorize(t)
	do(t, ctx, "consent screen", chromedp.Navigate(u), chromedp.WaitVisible(button("Allow")))
	if h := run(t, ctx, "consent heading", chromedp.Text(chromedp.CSS("h1"))); !strings.Contains(h, "Notes") {
		t.Errorf("the consent screen does not name the application: %q", h)
	}
	shot(t, ctx, "consent")
	do(t, ctx, "allow", chromedp.Click(button("Allow")), chromedp.WaitVisible(heading("Signed in to Notes")))
	code, gotState := cb.got()
	if code == "" || gotState != state {
		t.Fatalf("redirect brought code %q state %q, want a code and state %q", code, gotState, state)
	}
	tok, err := conf.Exchange(t.Context(), code, xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := idTokens.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc refuses the ID token: %v", err)
	}
	if idt.Nonce != nonce || idt.Subject == "" {
		t.Errorf("ID token nonce %q sub %q, want nonce %q", idt.Nonce, idt.Subject, nonce)
	}
	if tok.RefreshToken == "" {
		t.Error("a confidential client got no refresh token")
	}
	// The code is single-use.
	if _, err := conf.Exchange(t.Context(), code, xoauth2.VerifierOption(verifier)); err == nil {
		t.Error("the code was redeemed twice")
	}

	// Consent is remembered: the next sign-in comes straight back, and
	// this code is redeemed at Google's /v1/oauthtoken.
	u, verifier, _, state = authorize(t)
	do(t, ctx, "sign in again", chromedp.Navigate(u), chromedp.WaitVisible(heading("Signed in to Notes")))
	code, gotState = cb.got()
	if code == "" || gotState != state {
		t.Fatalf("second redirect brought code %q state %q", code, gotState)
	}
	// The client authenticates as registered (client_secret_basic).
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/oauthtoken", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {cb.URL + "/cb"}, "code_verifier": {verifier}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id[1]), url.QueryEscape(sec[1]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var google map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&google)
	resp.Body.Close()
	if resp.StatusCode != 200 || google["access_token"] == nil || google["id_token"] == nil {
		t.Fatalf("/v1/oauthtoken = %d %v", resp.StatusCode, google)
	}

	// The person withdraws the consent on /tokens; the screen returns.
	do(t, ctx, "authorized applications", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(`//h2[normalize-space()='Authorized applications']`))
	shot(t, ctx, "tokens-apps")
	do(t, ctx, "revoke", chromedp.Click(`//button[@aria-label='Revoke Notes']`),
		chromedp.WaitVisible(`//p[normalize-space()='No application acts for you.']`))
	u, _, _, _ = authorize(t)
	do(t, ctx, "consent asked again", chromedp.Navigate(u), chromedp.WaitVisible(button("Allow")))

	// The application signs the person out (OpenID Connect RP-Initiated
	// Logout, at the end_session_endpoint go-oidc read from discovery):
	// without a hint the person is asked first; with the ID token of the
	// person signed in it happens at once. Either way the browser comes
	// back to the registered address with the state, and the sts session
	// is over.
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.EndSession != s.URL+"/oauth2/logout" {
		t.Fatalf("end_session_endpoint = %q, %v", meta.EndSession, err)
	}
	ask := meta.EndSession + "?" + url.Values{"client_id": {id[1]}, "post_logout_redirect_uri": {cb.URL + "/cb"}, "state": {"bye"}}.Encode()
	do(t, ctx, "sign-out question", chromedp.Navigate(ask), chromedp.WaitVisible(heading("Sign out of sts?")))
	shot(t, ctx, "logout")
	do(t, ctx, "sign out", chromedp.Click(button("Sign out")), chromedp.WaitVisible(heading("Signed in to Notes")))
	if code, st := cb.got(); code != "" || st != "bye" {
		t.Errorf("after sign-out the application got code %q state %q, want state bye only", code, st)
	}
	do(t, ctx, "signed out of sts", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(heading("Sign in")))

	do(t, ctx, "sign in to sts again", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	hinted := meta.EndSession + "?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {cb.URL + "/cb"}, "state": {"bye2"}}.Encode()
	do(t, ctx, "sign out with the ID token", chromedp.Navigate(hinted), chromedp.WaitVisible(heading("Signed in to Notes")))
	if code, st := cb.got(); code != "" || st != "bye2" {
		t.Errorf("after sign-out with a hint the application got code %q state %q, want state bye2 only", code, st)
	}
	do(t, ctx, "signed out of sts again", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(heading("Sign in")))
}
