package api

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/tokens"
)

// TestGetIDTokenDelegationCap (docs/security.md T-250): GetIDToken mints
// a new token carrying the caller's act chain, so the delegation cap
// (token_exchange.max_delegation_depth) holds for it as at the token
// endpoint (T-233): after an operator lowered the cap, a credential issued
// under the old one with a longer chain got an ID token carrying the
// whole chain, where a re-exchange or a refresh of it is refused. A chain
// within the cap is served as before.
func TestGetIDTokenDelegationCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.h.MaxDelegationDepth = 1
	c := e.clients(e.srv.URL)
	now := time.Now()
	mint := func(act *tokens.Actor) string {
		tok, _, err := e.h.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: e.user.ID, Audience: tokens.Audience{testIssuer},
			IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)), ClientID: "ci",
			Scope: pat.ScopeIDToken, OrgID: e.org.ID, Principal: string(e.user.Kind), Act: act})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	one := &tokens.Actor{Issuer: "https://ci.example", Subject: "repo:acme/app"}
	two := &tokens.Actor{Issuer: testIssuer, Subject: "11111111-2222-4333-8444-555555555555", ClientID: "ci", Act: one}
	for _, v := range []gitpodv1.IDTokenVersion{gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V1, gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V2} {
		r, err := c.identity.GetIDToken(as(mint(two)), &gitpodv1.GetIDTokenRequest{Audience: []string{"sts.amazonaws.com"}, Version: v})
		if connect.CodeOf(err) != connect.CodePermissionDenied || r != nil {
			t.Errorf("%s: a chain of 2 under a cap of 1 = %v (token %t), want permission_denied and no token", v, err, r != nil)
		}
		r, err = c.identity.GetIDToken(as(mint(one)), &gitpodv1.GetIDTokenRequest{Audience: []string{"sts.amazonaws.com"}, Version: v})
		if err != nil {
			t.Fatalf("%s: a chain of 1 under a cap of 1: %v, want an ID token", v, err)
		}
		if cl := claimsOf(t, r.GetToken()); cl["act"] == nil {
			t.Errorf("%s: act missing from the ID token of a chain of 1", v)
		}
	}
}
