package app

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/tokens"
)

// TestRefreshTokenIntrospectionFollowsTheClientsScopes (docs/security.md
// a refresh token introspects active only while a refresh would
// be honoured. A refresh may narrow the family's scope to what its client
// still lists, so a family keeps introspecting active while its
// client lists one of its scopes, and reports the scopes still listed;
// once the client lists none, every refresh is refused (invalid_scope)
// and introspection says inactive. Given a scope back, both honour the
// family again. On SQLite and PostgreSQL.
func TestRefreshTokenIntrospectionFollowsTheClientsScopes(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testRefreshIntrospectionScopes(t, newOAuthEnv(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testRefreshIntrospectionScopes(t, newOAuthEnvOn(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)}))
	})
}

func testRefreshIntrospectionScopes(t *testing.T, e *oauthEnv) {
	here, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	introspect, _ := e.resourceServer(t, here, "https://a.example")
	// The family holds read (issueRefresh); a's list is read, write.
	rt := e.issueRefresh(t)
	scopeOf := func() (bool, string) {
		t.Helper()
		status, _, body := introspect(rt)
		var m struct {
			Active bool   `json:"active"`
			Scope  string `json:"scope"`
		}
		if status != 200 || json.Unmarshal([]byte(body), &m) != nil {
			t.Fatalf("introspect = %d %s", status, body)
		}
		return m.Active, m.Scope
	}
	setScopes := func(s ...string) {
		t.Helper()
		if _, err := here.Update(t.Context(), clients.Caller{Actor: "test"}, e.a.ID, clients.UpdateInput{Scopes: &s}); err != nil {
			t.Fatal(err)
		}
	}
	refresh := func(scope ...string) int {
		t.Helper()
		form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		if len(scope) > 0 {
			form.Set("scope", scope[0])
		}
		status, _, _ := e.post(t, "/oauth2/token", form, e.a.ID, e.secA)
		return status
	}
	if active, scope := scopeOf(); !active || scope != "read" {
		t.Fatalf("a fresh refresh token: active %v scope %q, want active with read", active, scope)
	}
	setScopes("write")
	if active, scope := scopeOf(); active {
		t.Errorf("refresh token of a client that no longer lists any of its scopes: introspection active (scope %q), want inactive", scope)
	}
	for _, s := range [][]string{nil, {"read"}} {
		if status := refresh(s...); status != 400 {
			t.Errorf("refresh (scope %v) without the scope = %d, want 400", s, status)
		}
	}
	setScopes("read", "write")
	if active, scope := scopeOf(); !active || scope != "read" {
		t.Errorf("refresh token after its client lists read again: active %v scope %q, want active with read", active, scope)
	}
	if status := refresh(); status != 200 {
		t.Errorf("refresh with the scope back = %d, want 200", status)
	}

	// A family of read and write whose client keeps write alone refreshes
	// narrowed to write, and introspects with write.
	rt, err = e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a,
		tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: "SERVICE_ACCOUNT"}, []string{"read", "write"}, []string{"https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	setScopes("write")
	if active, scope := scopeOf(); !active || scope != "write" {
		t.Errorf("refresh token of read and write, its client listing write: active %v scope %q, want active with write", active, scope)
	}
	if status := refresh("write"); status != 200 {
		t.Errorf("refresh narrowed to write = %d, want 200", status)
	}
}
