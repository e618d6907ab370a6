package app_test

import (
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/opensts/sts/internal/config"
)

// TestAuthorizationCodeAtHashEdDSAAccessRS256ID: access token
// EdDSA (keys.algorithm), ID token RS256 (rs256_audiences): at_hash must be
// SHA-256 (the ID token's alg), not SHA-512 (the access token's). With the
// default ES256 primary both are SHA-256 and the existing test cannot tell.
func TestAuthorizationCodeAtHashEdDSAAccessRS256ID(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t, func(c *config.Config) {
		c.Keys.Algorithm = "EdDSA"
		c.Keys.ExtraAlgorithms = []string{"RS256"}
		c.IDTokens.RS256Audiences = []string{"*"}
	})
	provider, err := oidc.NewProvider(t.Context(), e.base)
	if err != nil {
		t.Fatal(err)
	}
	tok := e.tokenFor(t, e.user, "openid", "email")
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID, SupportedSigningAlgs: []string{oidc.RS256}}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("RS256-only Verify: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("go-oidc VerifyAccessToken: %v", err)
	}
}
