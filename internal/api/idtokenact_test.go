package api

import (
	"reflect"
	"testing"
	"time"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/tokens"
)

// TestGetIDTokenCarriesActor: an ID token minted with a delegated
// credential (act: a service account acting for the user) names the actor
// chain in act, V1 and V2, so a relying party never sees the user where a
// service account acted for them (docs/api.md, "ID tokens"). A credential
// without act gives an ID token without act.
func TestGetIDTokenCarriesActor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL)
	now := time.Now()
	act := &tokens.Actor{Issuer: testIssuer, Subject: "11111111-2222-4333-8444-555555555555", ClientID: "ci",
		Act: &tokens.Actor{Issuer: "https://ci.example", Subject: "repo:acme/app"}}
	delegated, _, err := e.h.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: e.user.ID, Audience: tokens.Audience{testIssuer},
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)), ClientID: "ci",
		Scope: pat.ScopeIDToken, OrgID: e.org.ID, Principal: string(e.user.Kind), Act: act})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": testIssuer, "sub": act.Subject, "client_id": "ci",
		"act": map[string]any{"iss": "https://ci.example", "sub": "repo:acme/app"}}
	for _, v := range []gitpodv1.IDTokenVersion{gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V1, gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V2} {
		r, err := c.identity.GetIDToken(as(delegated), &gitpodv1.GetIDTokenRequest{Audience: []string{"sts.amazonaws.com"}, Version: v})
		if err != nil {
			t.Fatalf("%s: GetIDToken: %v", v, err)
		}
		cl := claimsOf(t, r.GetToken())
		if !reflect.DeepEqual(cl["act"], want) {
			t.Errorf("%s: act = %v, want %v (sub %v)", v, cl["act"], want, cl["sub"])
		}
		r, err = c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: []string{"sts.amazonaws.com"}, Version: v})
		if err != nil {
			t.Fatalf("%s: GetIDToken with the PAT: %v", v, err)
		}
		if cl := claimsOf(t, r.GetToken()); cl["act"] != nil {
			t.Errorf("%s: act = %v with an undelegated credential, want none", v, cl["act"])
		}
	}
}
