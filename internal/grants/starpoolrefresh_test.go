package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// TestRefreshOfAFamilyWithinAStarPool (docs/security.md F-113): a pool
// bound to a principal of ours whose scopes are "*" and offline_access
// lets a token of it be re-exchanged for identity:read, as "*" stands for
// each scope of our API but sts:admin, and the source checker
// (introspection, the bearer API) judges the family within the pool; the
// refresh grant must judge it by the same rule, not refuse at the first
// refresh what the exchange issued. A pool that no longer holds "*" still
// ends it. On SQLite and PostgreSQL, through the real token endpoint.
func TestRefreshOfAFamilyWithinAStarPool(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testRefreshOfAFamilyWithinAStarPool(t, backendStore(t, backend))
		})
	}
}

func testRefreshOfAFamilyWithinAStarPool(t *testing.T, store storage.Store) {
	const kafka = "https://kafka.example"
	m := newMatrixEnvOn(t, store)
	ctx := t.Context()
	if err := m.store.CreatePool(ctx, storage.Pool{ID: "lf", OrgID: "acme", Condition: "true", PrincipalID: "sa",
		Scopes: []string{"*", ScopeOfflineAccess}, Audiences: []string{kafka}}); err != nil {
		t.Fatal(err)
	}
	if err := m.store.CreateProvider(ctx, storage.Provider{PoolID: "lf", ID: "p", Issuer: m.issuer.URL, Audiences: []string{"lf"}}); err != nil {
		t.Fatal(err)
	}
	reload(t, m)
	src := tokens.NewStoreSources(m.store, m.grant.Trust)
	src.TTL, src.Audiences = 0, m.ref.Audiences
	m.ref.Sources = src
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: []string{"lf"}, Scopes: []string{"*", "identity:read", ScopeOfflineAccess}, Audiences: []string{kafka}})
	status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "lf"), "pool", "lf", "scope", "* offline_access", "audience", kafka))
	at, _ := body["access_token"].(string)
	if status != http.StatusOK || at == "" {
		t.Fatalf("exchange = %d %v", status, body)
	}
	status, body = m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {at},
		"subject_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"identity:read offline_access"}, "audience": {kafka}})
	rt, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt == "" {
		t.Fatalf("re-exchange for identity:read = %d %v", status, body)
	}
	refresh := func() (int, map[string]any) {
		t.Helper()
		status, body := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
		if next, _ := body["refresh_token"].(string); next != "" {
			rt = next
		}
		return status, body
	}
	if status, body := refresh(); status != http.StatusOK || body["access_token"] == nil {
		t.Errorf("refresh of an identity:read family within a pool of * = %d %v, want 200", status, body)
	}

	if err := m.store.UpdatePool(ctx, "lf", func(o storage.Pool) (storage.Pool, error) {
		o.Scopes = []string{"read", ScopeOfflineAccess}
		return o, nil
	}); err != nil {
		t.Fatal(err)
	}
	reload(t, m)
	if status, body := refresh(); status != http.StatusBadRequest || body["access_token"] != nil {
		t.Errorf("refresh after the pool lost * = %d %v, want 400 and no token", status, body)
	}
}

// TestWithinPoolStar: the refresh grant's pool ceiling reads "*" as the
// exchange and the source checker do (docs/security.md F-113): for a
// family acting as a principal of ours each scope of our API but
// sts:admin, never a scope the API does not know, and for any other
// family nothing but "*" itself.
func TestWithinPoolStar(t *testing.T) {
	pool := &trust.Pool{Pool: storage.Pool{Scopes: []string{"*", ScopeOfflineAccess}}}
	cases := []struct {
		scope string
		api   bool
		ok    bool
	}{
		{"identity:read", true, true},
		{"*", true, true},
		{"sts:admin", true, false},
		{"kafka:write", true, false},
		{"identity:read", false, false},
		{"*", false, true},
	}
	for _, tc := range cases {
		err := withinPool(pool, []string{tc.scope, ScopeOfflineAccess}, nil, nil, tc.api)
		if (err == nil) != tc.ok {
			t.Errorf("withinPool(* offline_access, %q, api %v) = %v, want allowed %v", tc.scope, tc.api, err, tc.ok)
		}
	}
}
