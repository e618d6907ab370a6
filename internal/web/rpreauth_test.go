package web_test

import (
	"html"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

type relyingParty struct {
	conf     *xoauth2.Config
	verifier *oidc.IDTokenVerifier
	cb       *callback
}

func newRelyingParty(t *testing.T, s *server) relyingParty {
	t.Helper()
	cb := newCallback(t)
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", cb.URL+"/cb", "--audience", s.URL, "--scope", "openid")
	id := regexp.MustCompile(`^(\S+)\n`).FindStringSubmatch(out)
	sec := regexp.MustCompile(`\n(sts_cs_\S+)$`).FindStringSubmatch(out)
	if id == nil || sec == nil {
		t.Fatalf("client create printed %q", out)
	}
	conf := &xoauth2.Config{ClientID: id[1], ClientSecret: sec[1], RedirectURL: cb.URL + "/cb", Scopes: []string{"openid"},
		Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInHeader}}
	provider, err := oidc.NewProvider(t.Context(), s.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return relyingParty{conf: conf, verifier: provider.Verifier(&oidc.Config{ClientID: id[1]}), cb: cb}
}

// providerSession starts a server whose sign-in goes through the test
// provider, and signs a browser in there as erin (with extra claims on
// top); it returns the provider, the server, the browser and erin's claims.
func providerSession(t *testing.T, extra map[string]any) (*idp, *server, *http.Client, map[string]any) {
	t.Helper()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	erin := map[string]any{"sub": "u-9", "email": "erin@example.com", "email_verified": true}
	maps.Copy(erin, extra)
	p.signInAs(erin)
	b := follower(t)
	if r := signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("first sign-in: %d\n%s", r.status, r.body)
	}
	return p, s, b, erin
}

// rpAuthorize sends the RP's request and returns the sign-in page path
// authorize sends the browser to.
func rpAuthorize(t *testing.T, b *http.Client, rp relyingParty, verifier string, opts ...xoauth2.AuthCodeOption) string {
	t.Helper()
	noFollow := &http.Client{Jar: b.Jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	opts = append(opts, xoauth2.S256ChallengeOption(verifier), oidc.Nonce("n-1"))
	resp, err := noFollow.Get(rp.conf.AuthCodeURL("st-1", opts...))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Path != "/login" {
		t.Fatalf("authorize answered %d to %q, want the sign-in page", resp.StatusCode, loc)
	}
	return loc.RequestURI()
}

// approveIfAsked answers Allow when r is the consent screen, and returns
// the page that answer ends on; r itself otherwise.
func approveIfAsked(t *testing.T, b *http.Client, s *server, r reply) reply {
	t.Helper()
	if !strings.Contains(r.body, `name="sts_consent_csrf"`) {
		return r
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(r.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("sts_consent_decision", "approve")
	return (&person{c: b, s: s}).do(t, http.MethodPost, "/oauth2/authorize", form, nil)
}

// TestRelyingPartyReauthIsTheServersChoice: a relying party's prompt=login
// is met only by a sign-in the server knows authenticated the person
// after the request (docs/security.md T-178). The re-authentication used
// to be asked for by reauth=1 in the sign-in page's URL alone, which the
// person at the browser (the adversary T-178 names: a shared computer
// left signed in at the provider) edits away, or sidesteps by signing in
// from a plain /login and then reloading the request: the provider
// answered from its own sign-in of an hour ago (or without saying when),
// and the relying party got a code whose ID token said auth_time now.
// Now the session records when its sign-in authenticated, and a request
// without a demand brings the provider's auth_time, not a later one.
func TestRelyingPartyReauthIsTheServersChoice(t *testing.T) {
	t.Parallel()
	idp, s, b, erin := providerSession(t, nil)
	rp := newRelyingParty(t, s)
	stale := maps.Clone(erin)
	stale["auth_time"] = time.Now().Add(-time.Hour).Unix()
	idp.signInAs(stale) // from now on the provider answers from an hour ago

	for _, variant := range []string{"reauth=1 edited out of the sign-in page's URL", "a plain sign-in, then the request reloaded",
		"a plain sign-in without auth_time, then the request reloaded"} {
		if strings.Contains(variant, "without auth_time") {
			idp.signInAs(erin) // the provider says nothing of when, as it was not asked
		}
		verifier := xoauth2.GenerateVerifier()
		asked := time.Now().Truncate(time.Second)
		loginPath := rpAuthorize(t, b, rp, verifier, xoauth2.SetAuthURLParam("prompt", "login"))
		if !strings.Contains(loginPath, "reauth=1") {
			t.Fatalf("the sign-in page is not opened as a re-authentication: %s", loginPath)
		}
		lp, _ := url.Parse(loginPath)
		back := lp.Query().Get("return_to")
		var r reply
		if strings.HasPrefix(variant, "reauth=1") {
			r = signInFrom(t, b, s, "test", strings.Replace(loginPath, "&reauth=1", "", 1))
		} else {
			if r = signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
				t.Fatalf("%s: plain sign-in: %d", variant, r.status)
			}
			r = get(t, b, s.URL+back)
		}
		r = approveIfAsked(t, b, s, r)
		if seen := idp.seen(); seen.Get("max_age") == "0" {
			t.Logf("%s: the provider was asked max_age=0", variant)
		}
		if code, _ := rp.cb.got(); code != "" {
			tok, err := rp.conf.Exchange(t.Context(), code, xoauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("%s: Exchange: %v", variant, err)
			}
			idt, err := rp.verifier.Verify(t.Context(), tok.Extra("id_token").(string))
			if err != nil {
				t.Fatalf("%s: go-oidc Verify: %v", variant, err)
			}
			var c struct {
				AuthTime int64 `json:"auth_time"`
			}
			_ = idt.Claims(&c)
			t.Errorf("%s: prompt=login met by a provider answering from an hour ago: a code whose ID token says auth_time %d (request at %d; the provider's sign-in at %d)",
				variant, c.AuthTime, asked.Unix(), stale["auth_time"])
		}
	}

	// A request without a demand after the provider's answer from an hour
	// ago: the ID token's auth_time is that hour-old sign-in, not now.
	idp.signInAs(stale)
	if r := signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("plain sign-in: %d", r.status)
	}
	verifier := xoauth2.GenerateVerifier()
	r := get(t, b, rp.conf.AuthCodeURL("st-2", xoauth2.S256ChallengeOption(verifier), oidc.Nonce("n-2")))
	r = approveIfAsked(t, b, s, r)
	code, _ := rp.cb.got()
	if code == "" {
		t.Fatalf("a request without a demand: no code (%d)\n%s", r.status, r.body)
	}
	tok, err := rp.conf.Exchange(t.Context(), code, xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	idt, err := rp.verifier.Verify(t.Context(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	if err := idt.Claims(&c); err != nil || c.AuthTime != stale["auth_time"] {
		t.Errorf("ID token auth_time %d (%v), want the provider's sign-in, %d", c.AuthTime, err, stale["auth_time"])
	}
}

// TestRelyingPartyStaleRefusalSpeaksOfSigningIn: the page a relying
// party's prompt=login ends on, when the provider answers from an earlier
// sign-in, was sudo mode's: it said creating an access token needs a
// fresh sign-in, which is not what the person was doing, and offered no
// way back to the application. It now says signing in again is needed
// and links to the sign-in page, as a re-authentication, back to the
// same request (docs/security.md T-178).
func TestRelyingPartyStaleRefusalSpeaksOfSigningIn(t *testing.T) {
	t.Parallel()
	idp, s, b, erin := providerSession(t, nil)
	rp := newRelyingParty(t, s)
	stale := maps.Clone(erin)
	stale["auth_time"] = time.Now().Add(-time.Hour).Unix()
	idp.signInAs(stale)
	loginPath := rpAuthorize(t, b, rp, xoauth2.GenerateVerifier(), xoauth2.SetAuthURLParam("prompt", "login"))
	r := signInFrom(t, b, s, "test", loginPath)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("stale answer: %d", r.status)
	}
	page := html.UnescapeString(r.body)
	page = page[strings.Index(page, "<main"):]
	if strings.Contains(page, "access token") || strings.Contains(page, `href="/tokens"`) {
		t.Errorf("the step-up refusal for Notes speaks of access tokens:\n%s", page)
	}
	if !strings.Contains(page, `href="`+loginPath+`"`) {
		t.Errorf("the refusal does not link back to %s:\n%s", loginPath, page)
	}
}
