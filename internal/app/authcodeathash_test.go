package app_test

import (
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestAuthorizationCodeIDTokenAtHash: the ID token the token endpoint
// issues with an access token carries at_hash (OIDC Core §3.1.3.6,
// §3.2.2.9), judged by go-oidc: IDToken.VerifyAccessToken accepts the
// access token issued with it and refuses another.
func TestAuthorizationCodeIDTokenAtHash(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	provider, err := oidc.NewProvider(t.Context(), e.base)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: e.conf.ID})
	first := e.tokenFor(t, e.user, "openid", "email")
	second := e.tokenFor(t, e.user, "openid", "email")
	raw, _ := first.Extra("id_token").(string)
	idt, err := verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	if err := idt.VerifyAccessToken(first.AccessToken); err != nil {
		t.Errorf("go-oidc VerifyAccessToken with the access token issued alongside: %v", err)
	}
	if err := idt.VerifyAccessToken(second.AccessToken); err == nil {
		t.Error("go-oidc VerifyAccessToken accepted another access token")
	}
}
