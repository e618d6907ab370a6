package app_test

import (
	"testing"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestRefreshTokenIntrospectedByItsClientOnly: a refresh token is a
// credential of the client it was issued to, presented to the token
// endpoint alone, never to a resource server; so a resource server's
// client of the same organization whose audiences include the family's
// learns nothing about it at /oauth2/introspect, as it may not revoke it
// either, while it still introspects the access tokens meant for it (RFC
// 7662 §4; docs/security.md T-142). The client the token was issued to,
// and a client holding the introspect permission, still see it.
func TestRefreshTokenIntrospectedByItsClientOnly(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	tok := e.tokenFor(t, e.user, "openid", "notes.read")
	if tok.RefreshToken == "" {
		t.Fatal("the authorization-code flow issued no refresh token")
	}
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	rs := func(scopes ...string) (string, string) {
		c, sec, err := svc.Create(t.Context(), audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: e.conf.PrincipalID,
			Name: "notes API", GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Scopes: scopes, Audiences: e.conf.Audiences})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID, sec
	}
	rsID, rsSecret := rs()
	adminID, adminSecret := rs(storage.ScopeIntrospect)
	introspect := func(id, sec, token string) map[string]any {
		t.Helper()
		return e.introspected(t, id, sec, token)
	}
	for _, tc := range []struct {
		name, id, secret, token string
		active                  bool
	}{
		{"the resource server, an access token for its audience", rsID, rsSecret, tok.AccessToken, true},
		{"the resource server, the refresh token of another client", rsID, rsSecret, tok.RefreshToken, false},
		{"the client the refresh token was issued to", e.conf.ID, e.secret, tok.RefreshToken, true},
		{"a client with the introspect permission", adminID, adminSecret, tok.RefreshToken, true},
	} {
		m := introspect(tc.id, tc.secret, tc.token)
		if m["active"] != tc.active {
			t.Errorf("%s: active = %v (%v), want %v", tc.name, m["active"], m, tc.active)
		}
		if !tc.active && len(m) != 1 {
			t.Errorf("%s: an inactive answer says more than active: %v", tc.name, m)
		}
	}
}
