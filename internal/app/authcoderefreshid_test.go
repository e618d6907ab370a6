package app_test

import (
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/config"
)

// idTokenClaims are the claims of an ID token the refresh tests compare.
type idTokenClaims struct {
	Email    string `json:"email"`
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce"`
	AtHash   string `json:"at_hash"`
	Azp      string `json:"azp"`
}

// TestRefreshIDToken: a refresh of a family begun with the openid scope
// answers a new ID token (OIDC Core §12.2), as kubectl's OIDC auth
// provider and kubelogin need, judged by go-oidc: the same iss, sub and
// aud as the first, the auth_time of the original sign-in (not the
// refresh's), no nonce, and at_hash of the new access token. A family
// begun without openid gets none.
func TestRefreshIDToken(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	signedIn := time.Now().Add(-90 * time.Second).Truncate(time.Second)
	e.signInAt(t, e.user, signedIn)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	conf.Scopes = []string{"openid", "email"}
	verifier, nonce := xoauth2.GenerateVerifier(), randText(t)
	tok, err := conf.Exchange(ctx, e.approve(t, conf, verifier, oidc.Nonce(nonce)), xoauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("x/oauth2 Exchange = %+v, %v; want a refresh token", tok, err)
	}
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	// OIDC Discovery §3: RS256 is among the ID token algorithms, by
	// default (keys.extra_algorithms), beside keys.algorithm's.
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil || !slices.Contains(meta.Algs, oidc.RS256) || !slices.Contains(meta.Algs, oidc.ES256) {
		t.Errorf("id_token_signing_alg_values_supported = %v, %v; want RS256 and ES256", meta.Algs, err)
	}
	v := provider.Verifier(&oidc.Config{ClientID: e.conf.ID})
	first, err := v.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("go-oidc Verify of the first ID token: %v", err)
	}

	// A second later, so a fresh auth_time would differ from the sign-in's.
	time.Sleep(time.Second)
	refreshed, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("x/oauth2 refresh: %v", err)
	}
	raw, _ := refreshed.Extra("id_token").(string)
	if raw == "" {
		t.Fatalf("refresh of an openid family answered no id_token: %+v", refreshed)
	}
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc Verify of the refreshed ID token: %v", err)
	}
	var c idTokenClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if idt.Issuer != first.Issuer || idt.Subject != first.Subject || len(idt.Audience) != 1 || idt.Audience[0] != e.conf.ID {
		t.Errorf("refreshed ID token iss %q sub %q aud %v, want %q %q [%s]", idt.Issuer, idt.Subject, idt.Audience, first.Issuer, first.Subject, e.conf.ID)
	}
	if c.AuthTime != signedIn.Unix() {
		t.Errorf("refreshed ID token auth_time = %d, want the sign-in's %d", c.AuthTime, signedIn.Unix())
	}
	if c.Nonce != "" || c.Azp != "" {
		t.Errorf("refreshed ID token nonce %q azp %q, want neither", c.Nonce, c.Azp)
	}
	if c.Email != e.user.Email {
		t.Errorf("refreshed ID token email = %q, want %q (the family's email scope)", c.Email, e.user.Email)
	}
	if err := idt.VerifyAccessToken(refreshed.AccessToken); err != nil {
		t.Errorf("go-oidc VerifyAccessToken with the refreshed access token: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err == nil {
		t.Error("the refreshed ID token's at_hash matches the first access token")
	}
	if !idt.IssuedAt.After(first.IssuedAt) {
		t.Errorf("refreshed ID token iat %v, not after the first's %v", idt.IssuedAt, first.IssuedAt)
	}

	// Without openid the family's refreshes answer no ID token.
	plain := e.tokenFor(t, e.user, "notes.read")
	if plain.RefreshToken == "" || plain.Extra("id_token") != nil {
		t.Fatalf("code without openid = refresh %q id_token %v", plain.RefreshToken, plain.Extra("id_token"))
	}
	conf.Scopes = []string{"notes.read"}
	again, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: plain.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh without openid: %v", err)
	}
	if id := again.Extra("id_token"); id != nil {
		t.Errorf("refresh of a family without openid answered id_token %v", id)
	}
}

// TestRefreshRS256IDToken: the refreshed ID token of a relying party named
// in id_tokens.rs256_audiences is signed RS256 like its first, with
// at_hash by the RS256 key's hash.
func TestRefreshRS256IDToken(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t, func(c *config.Config) { c.IDTokens.RS256Audiences = []string{"*"} })
	ctx := t.Context()
	tok := e.tokenFor(t, e.user, "openid")
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	refreshed, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("x/oauth2 refresh: %v", err)
	}
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := refreshed.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID, SupportedSigningAlgs: []string{oidc.RS256}}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("RS256-only verification of the refreshed ID token %q: %v", raw, err)
	}
	if err := idt.VerifyAccessToken(refreshed.AccessToken); err != nil {
		t.Errorf("go-oidc VerifyAccessToken of the refreshed RS256 ID token: %v", err)
	}
}
