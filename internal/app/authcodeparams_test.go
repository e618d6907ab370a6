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
// refused as before (docs/security.md T-240).
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
	t.Run("WithAValue", func(t *testing.T) {
		refused(t, "request_not_supported", xoauth2.SetAuthURLParam("request", "eyJhbGciOiJub25lIn0.e30."))
		refused(t, "request_uri_not_supported", xoauth2.SetAuthURLParam("request_uri", "https://rp.example/req"))
	})
}
