package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestAuthorizationCodeGrantsNoAdminScope (docs/security.md A-44): an
// organization administrator registers an authorization_code client whose
// scopes include sts:admin and waits for an instance administrator to
// consent; the client would then hold an sts:admin token acting as the
// instance role. /oauth2/authorize never grants sts:admin (invalid_scope
// to the client, before any consent screen), a consent remembered with it
// carries nothing through, and the token endpoint redeems no code and
// refreshes no authorization-code family that holds it (issued before the
// rule).
func TestAuthorizationCodeGrantsNoAdminScope(t *testing.T) {
	t.Parallel()
	browserNeverGrants(t, "sts:admin")
}

// TestAuthorizationCodeGrantsNoIntrospect (docs/security.md A-75): a
// client registered with introspect and authorization_code got, once a
// person consented, an access token acting as that person that
// introspected every token of the organization. introspect is a client's
// own capability (its credentials, or client_credentials), never one a
// person delegates: the browser flow treats it as sts:admin.
func TestAuthorizationCodeGrantsNoIntrospect(t *testing.T) {
	t.Parallel()
	browserNeverGrants(t, "introspect")
}

// browserNeverGrants is the rule of for scope.
func browserNeverGrants(t *testing.T, scope string) {
	t.Helper()
	e := newCodeEnv(t)
	ctx := t.Context()
	now := storage.Now(time.Now())
	root := storage.Principal{ID: storage.NewID(), OrgID: e.org, Kind: storage.PrincipalUser, Name: "root", InstanceAdmin: true,
		CreatedAt: now, UpdatedAt: now}
	sa := storage.Principal{ID: storage.NewID(), OrgID: e.org, Kind: storage.PrincipalServiceAccount, Name: "dashboard", CreatedAt: now, UpdatedAt: now}
	for _, p := range []storage.Principal{root, sa} {
		if err := e.store.CreatePrincipal(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	cb := e.callback.URL + "/cb"
	c, sec, err := svc.Create(ctx, audit.Caller{Actor: "principal:org-admin"}, clients.CreateInput{OrgID: e.org, PrincipalID: sa.ID,
		Name: "Dashboard", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"openid", scope}, Audiences: []string{e.base}, RedirectURIs: []string{cb}})
	if err != nil {
		t.Fatal(err)
	}
	conf := e.oauthConfig(c, sec, cb)
	conf.Scopes = []string{"openid", scope}
	e.signIn(t, root)

	wantInvalidScope := func(t *testing.T, opts ...xoauth2.AuthCodeOption) {
		t.Helper()
		resp, body := mustGet(t, e.browser, conf.AuthCodeURL("st", append(opts, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))...))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != oauth2.ErrorInvalidScope ||
			loc.Query().Get("code") != "" || loc.Query().Get("state") != "st" {
			t.Errorf("authorize with %s = %d %q Location %q, want a redirect with error=invalid_scope and state", scope, resp.StatusCode, body, resp.Header.Get("Location"))
		}
	}
	t.Run("Authorize", func(t *testing.T) {
		wantInvalidScope(t)
		wantInvalidScope(t, xoauth2.SetAuthURLParam("prompt", "consent"))
	})
	t.Run("RememberedConsent", func(t *testing.T) {
		if err := e.store.PutConsent(ctx, storage.Consent{PrincipalID: root.ID, ClientID: c.ID, Scopes: []string{"openid", scope},
			CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		wantInvalidScope(t)
		wantInvalidScope(t, xoauth2.SetAuthURLParam("prompt", "none"))
	})
	t.Run("CodeIssuedBefore", func(t *testing.T) {
		v, raw := xoauth2.GenerateVerifier(), secret.PrefixAuthCode.Generate()
		if err := e.store.CreateAuthCode(ctx, storage.AuthCode{ID: storage.NewID(), Digest: secret.Digest(e.pepper, raw), ClientID: c.ID,
			OrgID: e.org, PrincipalID: root.ID, RedirectURI: cb, Challenge: grants.S256(v), Scopes: []string{"openid", scope},
			CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		st, m := e.redeem(t, c, sec, url.Values{"code": {raw}, "code_verifier": {v}, "redirect_uri": {cb}})
		if st != http.StatusBadRequest || m["error"] != oauth2.ErrorInvalidGrant || m["access_token"] != nil {
			t.Errorf("redeeming a code holding %s = %d %v, want 400 invalid_grant", scope, st, m)
		}
	})
	t.Run("FamilyIssuedBefore", func(t *testing.T) {
		raw, family := secret.PrefixRefreshToken.Generate(), storage.NewID()
		tmpl, _ := json.Marshal(tokens.AccessClaims{Subject: root.ID, Principal: string(root.Kind), OrgID: e.org, ClientID: c.ID, GrantID: family})
		if err := e.store.CreateRefreshToken(ctx, storage.RefreshToken{ID: family, FamilyID: family, Digest: secret.Digest(e.pepper, raw),
			ClientID: c.ID, OrgID: e.org, Subject: root.ID, PrincipalID: string(root.Kind), Scopes: []string{"openid", scope},
			Audiences: []string{e.base}, Claims: tmpl, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for _, asked := range []string{"", scope} {
			form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {raw}}
			if asked != "" {
				form.Set("scope", asked)
			}
			if st, m := e.token(t, form, c.ID, sec); st != http.StatusBadRequest || m["error"] != oauth2.ErrorInvalidGrant || m["access_token"] != nil {
				t.Errorf("refreshing an authorization-code family holding %s (scope %q) = %d %v, want 400 invalid_grant", scope, asked, st, m)
			}
		}
		// No refresh of it is honoured, so it introspects inactive, to
		// its client as to anyone.
		if m := e.introspected(t, c.ID, sec, raw); m["active"] != false {
			t.Errorf("introspecting an authorization-code family holding %s = %v, want active false", scope, m)
		}
	})
	t.Run("OtherScopesStillWork", func(t *testing.T) {
		conf := *conf
		conf.Scopes = []string{"openid"}
		v, state := xoauth2.GenerateVerifier(), randText(t)
		// Approving again stores the consent anew, without the scope
		// remembered before.
		_, page := mustGet(t, e.browser, conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(v), xoauth2.SetAuthURLParam("prompt", "consent")))
		form := consentForm(t, page)
		form.Set("sts_consent_decision", "approve")
		resp, page := e.post(t, "/oauth2/authorize", form, nil)
		if got, err := e.store.GetConsent(ctx, root.ID, c.ID); err != nil || slices.Contains(got.Scopes, scope) {
			t.Errorf("consent after approving openid = %+v, %v, want it without %s", got, err, scope)
		}
		tok, err := conf.Exchange(ctx, e.codeFrom(t, resp, page, state), xoauth2.VerifierOption(v))
		if err != nil || tok.Extra("scope") != "openid" {
			t.Fatalf("Exchange for openid = %+v, %v", tok, err)
		}
		if _, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh of an openid family: %v", err)
		}
	})
}
