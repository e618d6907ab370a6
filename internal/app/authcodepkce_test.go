package app_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// TestAuthorizationCodeWithoutPKCE: a confidential client registered
// with require_pkce false is a relying party the way oauth2-proxy (without
// --code-challenge-method) and ArgoCD's server-side login are: golang.org/x/oauth2
// with a client secret, a nonce, no code_challenge and no code_verifier.
// The nonce is then required with openid, a code is bound to whatever
// PKCE its request carried (RFC 9700 §2.1.1), a public client can never
// opt out, and every other client keeps requiring PKCE (docs/security.md
// T-90).
func TestAuthorizationCodeWithoutPKCE(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	caller := audit.Caller{Actor: "principal:test"}
	no := false
	cb := e.callback.URL + "/cb"
	rp, rpSecret, err := svc.Create(ctx, caller, clients.CreateInput{OrgID: e.org, PrincipalID: e.conf.PrincipalID, Name: "oauth2-proxy",
		GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes:     []string{"openid", "email", "profile"}, Audiences: []string{"https://proxy.example"},
		RedirectURIs: []string{cb}, RequirePKCE: &no})
	if err != nil {
		t.Fatalf("create a confidential client with require_pkce false: %v", err)
	}
	if !rp.PKCEOptional {
		t.Fatalf("created client %+v: PKCEOptional false", rp)
	}
	// The opt-out is in the audit trail of the creation.
	evs, err := e.store.ListAudit(ctx, storage.AuditFilter{Actor: "principal:test"})
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, ev := range evs {
		audited = audited || (ev.Target == "client:"+rp.ID && strings.Contains(ev.Detail, "require_pkce=false"))
	}
	if !audited {
		t.Errorf("no create event naming require_pkce=false in %+v", evs)
	}

	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	// As oauth2-proxy builds it: the discovered endpoints, the secret
	// auto-detected between Basic and the form.
	conf := &xoauth2.Config{ClientID: rp.ID, ClientSecret: rpSecret, RedirectURL: cb, Scopes: []string{"openid", "email", "profile"},
		Endpoint: provider.Endpoint()}
	e.signIn(t, e.user)
	wantRedirectError := func(t *testing.T, u, want string) {
		t.Helper()
		resp, body := mustGet(t, e.browser, u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != want || loc.Query().Get("code") != "" || loc.Query().Get("state") != "st" {
			t.Errorf("%s: %d %q Location %q, want a redirect with error=%s and state", u, resp.StatusCode, body, resp.Header.Get("Location"), want)
		}
	}
	isGrantRefusal := func(t *testing.T, what string, st int, m map[string]any) {
		t.Helper()
		if st != http.StatusBadRequest || m["error"] != "invalid_grant" || m["access_token"] != nil {
			t.Errorf("%s = %d %v, want 400 invalid_grant", what, st, m)
		}
	}
	// noPKCE runs an authorization request without PKCE through the
	// consent screen (the first time) and returns the code.
	noPKCE := func(t *testing.T, c *xoauth2.Config, opts ...xoauth2.AuthCodeOption) string {
		t.Helper()
		state := randText(t)
		resp, page := mustGet(t, e.browser, c.AuthCodeURL(state, opts...))
		if resp.StatusCode == http.StatusOK {
			form := consentForm(t, page)
			form.Set("sts_consent_decision", "approve")
			resp, page = e.post(t, "/oauth2/authorize", form, nil)
		}
		return e.codeFrom(t, resp, page, state)
	}

	t.Run("RelyingPartyWithoutPKCE", func(t *testing.T) {
		nonce := randText(t)
		code := noPKCE(t, conf, oidc.Nonce(nonce))
		tok, err := conf.Exchange(ctx, code)
		if err != nil {
			t.Fatalf("x/oauth2 Exchange without code_verifier: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: rp.ID}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("go-oidc Verify: %v", err)
		}
		if idt.Nonce != nonce || idt.Subject != e.user.ID || tok.RefreshToken == "" {
			t.Errorf("ID token nonce %q sub %q, refresh %q; want %q %q and a refresh token", idt.Nonce, idt.Subject, tok.RefreshToken, nonce, e.user.ID)
		}
		// The same code again: reuse, as with PKCE.
		if _, err := conf.Exchange(ctx, code); err == nil {
			t.Error("a code without PKCE redeemed twice")
		}
	})
	t.Run("NonceRequiredWithOpenID", func(t *testing.T) {
		wantRedirectError(t, conf.AuthCodeURL("st"), "invalid_request")
		// Without openid there is no ID token to bind a nonce to.
		c := *conf
		c.Scopes = []string{"email"}
		if tok, err := c.Exchange(ctx, noPKCE(t, &c)); err != nil || tok.AccessToken == "" {
			t.Errorf("no openid, no nonce, no PKCE: %+v, %v", tok, err)
		}
	})
	t.Run("VerifierForCodeWithoutChallenge", func(t *testing.T) {
		code := noPKCE(t, conf, oidc.Nonce(randText(t)))
		st, m := e.redeem(t, rp, rpSecret, url.Values{"code": {code}, "code_verifier": {xoauth2.GenerateVerifier()}, "redirect_uri": {cb}})
		isGrantRefusal(t, "a code_verifier for a code issued without code_challenge", st, m)
	})
	t.Run("ChallengeStillBinds", func(t *testing.T) {
		// Downgrade: a request that carried a challenge is bound to it.
		v := xoauth2.GenerateVerifier()
		code := noPKCE(t, conf, oidc.Nonce(randText(t)), xoauth2.S256ChallengeOption(v))
		st, m := e.redeem(t, rp, rpSecret, url.Values{"code": {code}, "redirect_uri": {cb}})
		isGrantRefusal(t, "a code issued with code_challenge redeemed without code_verifier", st, m)
		code = noPKCE(t, conf, oidc.Nonce(randText(t)), xoauth2.S256ChallengeOption(v))
		st, m = e.redeem(t, rp, rpSecret, url.Values{"code": {code}, "code_verifier": {xoauth2.GenerateVerifier()}, "redirect_uri": {cb}})
		isGrantRefusal(t, "a wrong code_verifier", st, m)
		code = noPKCE(t, conf, oidc.Nonce(randText(t)), xoauth2.S256ChallengeOption(v))
		if _, err := conf.Exchange(ctx, code, xoauth2.VerifierOption(v)); err != nil {
			t.Errorf("PKCE used by a client that may omit it: %v", err)
		}
		// A challenge without a method would be plain (RFC 7636 §4.3).
		wantRedirectError(t, conf.AuthCodeURL("st", oidc.Nonce("n"), xoauth2.SetAuthURLParam("code_challenge", grants.S256(v))), "invalid_request")
		wantRedirectError(t, conf.AuthCodeURL("st", oidc.Nonce("n"), xoauth2.SetAuthURLParam("code_challenge", v),
			xoauth2.SetAuthURLParam("code_challenge_method", "plain")), "invalid_request")
	})
	t.Run("DefaultUnchanged", func(t *testing.T) {
		// The confidential client registered without the setting.
		if e.conf.PKCEOptional {
			t.Fatal("a client created without require_pkce has PKCE optional")
		}
		c := e.oauthConfig(e.conf, e.secret, cb)
		wantRedirectError(t, c.AuthCodeURL("st", oidc.Nonce("n")), "invalid_request")
		st, m := e.redeem(t, e.conf, e.secret, url.Values{"code": {"sts_ac_x"}, "redirect_uri": {cb}})
		if st != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Errorf("default client redeeming without code_verifier = %d %v, want invalid_request", st, m)
		}
	})
	t.Run("PublicClientCannotOptOut", func(t *testing.T) {
		_, _, err := svc.Create(ctx, caller, clients.CreateInput{OrgID: e.org, PrincipalID: e.conf.PrincipalID, Name: "spa",
			AuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode},
			Scopes: []string{"openid"}, Audiences: []string{"https://spa.example"}, RedirectURIs: []string{cb}, RequirePKCE: &no})
		if se, ok := errors.AsType[*sts.Error](err); !ok || se.Code != sts.Invalid || !strings.Contains(err.Error(), "require_pkce") {
			t.Errorf("create a public client with require_pkce false = %v, want Invalid naming require_pkce", err)
		}
		_, err = svc.Update(ctx, caller, e.public.ID, clients.UpdateInput{RequirePKCE: &no})
		if se, ok := errors.AsType[*sts.Error](err); !ok || se.Code != sts.Invalid || !strings.Contains(err.Error(), "require_pkce") {
			t.Errorf("update a public client to require_pkce false = %v, want Invalid naming require_pkce", err)
		}
		if got, _ := e.store.GetClient(ctx, e.public.ID); got.PKCEOptional {
			t.Error("the refused update changed the public client")
		}
	})
	t.Run("OptInAgain", func(t *testing.T) {
		yes := true
		if _, err := svc.Update(ctx, caller, rp.ID, clients.UpdateInput{RequirePKCE: &yes}); err != nil {
			t.Fatal(err)
		}
		wantRedirectError(t, conf.AuthCodeURL("st", oidc.Nonce("n")), "invalid_request")
		// And the confidential client opts out by update.
		if c, err := svc.Update(ctx, caller, e.conf.ID, clients.UpdateInput{RequirePKCE: &no}); err != nil || !c.PKCEOptional {
			t.Errorf("update a confidential client to require_pkce false = %+v, %v", c, err)
		}
	})
}
