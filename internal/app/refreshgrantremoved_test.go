package app

import (
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
)

// TestRefreshTokenIntrospectionFollowsTheClientsGrants (docs/security.md
// once a family's client no longer holds the refresh_token grant,
// the refresh grant refuses the family and introspection calls its
// refresh token inactive; given the grant back, both honour it again. The
// same for the grant that began the family.
func TestRefreshTokenIntrospectionFollowsTheClientsGrants(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	here, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	_, active := e.resourceServer(t, here, "https://a.example")
	rt := e.issueRefresh(t)
	if !active(rt) {
		t.Fatal("a fresh refresh token is inactive")
	}
	setGrants := func(gt ...string) {
		t.Helper()
		if _, err := here.Update(t.Context(), clients.Caller{Actor: "test"}, e.a.ID, clients.UpdateInput{GrantTypes: &gt}); err != nil {
			t.Fatal(err)
		}
	}
	refresh := func() int {
		t.Helper()
		status, _, _ := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, e.a.ID, e.secA)
		return status
	}
	setGrants(oauth2.GrantTypeClientCredentials)
	if active(rt) {
		t.Error("refresh token of a client no longer allowed refresh_token: introspection active, want inactive")
	}
	if status := refresh(); status != 400 {
		t.Errorf("refresh without the grant = %d, want 400", status)
	}
	setGrants(oauth2.GrantTypeClientCredentials, oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken)
	if !active(rt) {
		t.Error("refresh token inactive after its client was given refresh_token back")
	}

	// The family was begun by token exchange (docs/security.md A-98):
	// taken from the client, the family is inactive and refused; given
	// back, both honour it again.
	setGrants(oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken)
	if active(rt) {
		t.Error("refresh token of a client no longer allowed token exchange, which began its family: introspection active, want inactive")
	}
	if status := refresh(); status != 400 {
		t.Errorf("refresh without the grant that began the family = %d, want 400", status)
	}
	setGrants(oauth2.GrantTypeClientCredentials, oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken)
	if !active(rt) {
		t.Error("refresh token inactive after its client was given token exchange back")
	}
	if status := refresh(); status != 200 {
		t.Errorf("refresh with the grants back = %d, want 200", status)
	}
}
