package app_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
)

// TestAuthorizationRequestEmptyParameters: RFC 6749 §3.1 has a parameter
// sent without a value treated as if it were omitted. An empty request,
// request_uri or code_challenge (a relying party's URL template that
// always writes them) was taken as present: request_not_supported,
// request_uri_not_supported, or a PKCE-optional client's request refused
// as a plain challenge. Each is now a code, redeemed by x/oauth2 and its
// ID token verified by go-oidc; the same parameters with a value are
// refused as before (docs/security.md T-222).
func TestAuthorizationRequestEmptyParameters(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	e.signIn(t, e.user)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	e.approve(t, conf, xoauth2.GenerateVerifier()) // consent remembered from now on

	redeemed := func(t *testing.T, c *xoauth2.Config, code, clientID, nonce string, opts ...xoauth2.AuthCodeOption) {
		t.Helper()
		tok, err := c.Exchange(ctx, code, opts...)
		if err != nil {
			t.Fatalf("x/oauth2 Exchange: %v", err)
		}
		idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, tok.Extra("id_token").(string))
		if err != nil || idt.Nonce != nonce || idt.Subject != e.user.ID {
			t.Fatalf("ID token %+v, %v; want nonce %q and sub %q", idt, err, nonce, e.user.ID)
		}
	}
	for _, name := range []string{"request", "request_uri"} {
		t.Run("Empty_"+name, func(t *testing.T) {
			verifier, nonce := xoauth2.GenerateVerifier(), randText(t)
			code := e.authorize(t, conf, verifier, oidc.Nonce(nonce), xoauth2.SetAuthURLParam(name, ""))
			redeemed(t, conf, code, e.conf.ID, nonce, xoauth2.VerifierOption(verifier))
		})
	}
	t.Run("EmptyCodeChallengeOfAClientWithoutPKCE", func(t *testing.T) {
		svc, err := clients.NewService(e.store, e.pepper)
		if err != nil {
			t.Fatal(err)
		}
		no := false
		cb := e.callback.URL + "/cb"
		rp, rpSecret, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: e.conf.PrincipalID,
			Name: "proxy", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid"},
			Audiences: []string{"https://proxy.example"}, RedirectURIs: []string{cb}, RequirePKCE: &no})
		if err != nil {
			t.Fatal(err)
		}
		rconf := &xoauth2.Config{ClientID: rp.ID, ClientSecret: rpSecret, RedirectURL: cb, Scopes: []string{"openid"}, Endpoint: provider.Endpoint()}
		nonce, state := randText(t), randText(t)
		resp, page := mustGet(t, e.browser, rconf.AuthCodeURL(state, oidc.Nonce(nonce), xoauth2.SetAuthURLParam("code_challenge", "")))
		if resp.StatusCode != http.StatusOK {
			loc, _ := url.Parse(resp.Header.Get("Location"))
			t.Fatalf("empty code_challenge, no method: %d %v, want the consent screen", resp.StatusCode, loc.Query())
		}
		form := consentForm(t, page)
		form.Set("sts_consent_decision", "approve")
		resp, page = e.post(t, "/oauth2/authorize", form, nil)
		redeemed(t, rconf, e.codeFrom(t, resp, page, state), rp.ID, nonce)
	})
	// With a value each is refused as before, with the state and iss.
	refused := func(t *testing.T, want string, opts ...xoauth2.AuthCodeOption) {
		t.Helper()
		resp, _ := mustGet(t, e.browser, conf.AuthCodeURL("st", append(opts, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))...))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if q := loc.Query(); resp.StatusCode != http.StatusFound || q.Get("error") != want || q.Has("code") || q.Get("state") != "st" || q.Get("iss") != e.base {
			t.Errorf("%d %q, want error=%s with state and iss", resp.StatusCode, loc, want)
		}
	}
	// An empty challenge is no challenge: a client that must use PKCE
	// (the confidential one by default, the public one always) is
	// refused as without one, never let through without it (T-90).
	t.Run("EmptyCodeChallengeOfAClientRequiringPKCE", func(t *testing.T) {
		pconf := e.oauthConfig(e.public, "", "http://127.0.0.1:1/cb")
		pconf.Scopes = []string{"openid"} // all it may ask: only PKCE is wrong
		for _, c := range []*xoauth2.Config{conf, pconf} {
			for _, method := range []string{"", "S256"} {
				resp, _ := mustGet(t, e.browser, c.AuthCodeURL("st", oidc.Nonce("n"), xoauth2.SetAuthURLParam("code_challenge", ""), xoauth2.SetAuthURLParam("code_challenge_method", method)))
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if q := loc.Query(); resp.StatusCode != http.StatusFound || q.Get("error") != "invalid_request" || q.Has("code") || q.Get("state") != "st" {
					t.Errorf("client %s, empty code_challenge, method %q: %d %v, want invalid_request and no code", c.ClientID, method, resp.StatusCode, q)
				}
			}
		}
	})
	t.Run("WithAValue", func(t *testing.T) {
		refused(t, "request_not_supported", xoauth2.SetAuthURLParam("request", "eyJhbGciOiJub25lIn0.e30."))
		refused(t, "request_uri_not_supported", xoauth2.SetAuthURLParam("request_uri", "https://rp.example/req"))
	})
}

// TestAuthorizationRequestUnknownParameterRepeated: RFC 6749 §3.1 has the
// endpoint ignore parameters it does not know, as the OpenID conformance
// suite's oidcc-ensure-request-with-unknown-parameter-succeeds checks;
// only those it knows may not be repeated. An unknown parameter sent
// twice (a relying party's own list, extra=a&extra=b) was refused as
// "parameter repeated", whether or not someone was signed in. It is now
// ignored, with or without a consent screen and through the sign-in; a
// repeated parameter of OAuth or OpenID Connect is refused as before
// (docs/security.md T-223).
func TestAuthorizationRequestUnknownParameterRepeated(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	extra := func(u string) string { return u + "&extra=foobar&extra=again&x%5B%5D=1&x%5B%5D=2" }

	// Nobody signed in: to the sign-in page, and back to the request.
	verifier, nonce, state := xoauth2.GenerateVerifier(), randText(t), randText(t)
	resp, _ := mustGet(t, e.browser, extra(conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Path != "/login" {
		t.Fatalf("signed out, extra repeated: %d to %q, want the sign-in page", resp.StatusCode, loc)
	}
	e.signIn(t, e.user)
	resp, page := mustGet(t, e.browser, e.base+loc.Query().Get("return_to"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("back from the sign-in: %d %q, want the consent screen", resp.StatusCode, resp.Header.Get("Location"))
	}
	form := consentForm(t, page)
	form.Set("sts_consent_decision", "approve")
	resp, page = e.post(t, "/oauth2/authorize", form, nil)
	tok, err := conf.Exchange(ctx, e.codeFrom(t, resp, page, state), xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	if idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID}).Verify(ctx, tok.Extra("id_token").(string)); err != nil || idt.Nonce != nonce {
		t.Fatalf("go-oidc Verify: %+v, %v", idt, err)
	}
	// Consent remembered, silently (prompt=none): the code at once.
	verifier, state = xoauth2.GenerateVerifier(), randText(t)
	resp, page = mustGet(t, e.browser, extra(conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("prompt", "none"))))
	if _, err := conf.Exchange(ctx, e.codeFrom(t, resp, page, state), xoauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	// A parameter the endpoint knows, repeated, is refused, the repeated
	// one named.
	for _, name := range []string{"prompt", "scope", "nonce", "response_type", "max_age", "login_hint", "ui_locales", "claims", "acr_values", "display"} {
		u := conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())) + "&" + name + "=a&" + name + "=b"
		resp, _ := mustGet(t, e.browser, u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if q := loc.Query(); q.Get("error") != "invalid_request" || q.Get("error_description") != "parameter '"+name+"' repeated" || q.Has("code") {
			t.Errorf("%s repeated: %d %v, want invalid_request naming it", name, resp.StatusCode, q)
		}
	}
}
