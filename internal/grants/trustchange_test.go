package grants

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestTrustChangeEndsEarlierTokens: a change of what a pool or provider
// trusts, made through the pool service (the admin API's and the CLI's
// code), ends the access tokens exchanged through it before the change
// (introspection, the bearer API and re-exchange verify them with the
// revocation lookup and the source checker, as here) and their refresh
// families, while a token exchanged after, under the new rules, lives. A
// change of anything else ends nothing. Before, every one of them lived
// on (docs/security.md A-62). On SQLite and PostgreSQL.
func TestTrustChangeEndsEarlierTokens(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := backendStore(t, backend)
			testTrustChangeEndsEarlierTokens(t, store)
		})
	}
}

func testTrustChangeEndsEarlierTokens(t *testing.T, store storage.Store) {
	m := newMatrixEnvOn(t, store)
	ctx := t.Context()
	elsewhere := newTestIssuer(t) // another issuer a provider may move to
	svc, err := pools.NewService(m.store, pools.Limits{MaxTokenLifetime: 12 * time.Hour, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetOnChange(m.grant.Trust.Refresh) // as serve does: this node applies the change at once
	admin := pools.Caller{Actor: "admin"}
	verifier := *m.verify
	verifier.Revocations = tokens.StoreRevocations{Store: m.store}
	src := tokens.NewStoreSources(m.store, m.grant.Trust)
	src.TTL, src.Audiences = 0, m.ref.Audiences // the server's audiences, as in serve
	verifier.Sources = src

	// mint is a subject token of iss for the providers below (aud "lf").
	mint := func(iss *testIssuer) string {
		cl := iss.claims(time.Now(), "u-"+storage.NewID())
		cl["aud"] = "lf"
		return iss.mint(t, "RS256", cl)
	}
	var c storage.Client
	var sec string
	// exchange buys an access token and a refresh token through pool.
	exchange := func(pool, subject string) (at, rt string) {
		t.Helper()
		status, body := m.postAs(t, c.ID, sec, exchangeForm(subject, "pool", pool, "scope", "read offline_access"))
		at, _ = body["access_token"].(string)
		rt, _ = body["refresh_token"].(string)
		if status != http.StatusOK || at == "" || rt == "" {
			t.Fatalf("exchange = %d %v %v", status, body["error"], body["reason"])
		}
		return at, rt
	}
	refresh := func(rt string) int {
		t.Helper()
		status, _ := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
		return status
	}
	str := func(s string) *string { return &s }
	list := func(s ...string) *[]string { return &s }

	cases := []struct {
		name   string
		change func(pool string) error
		// after is a subject token the new rules admit, when the change
		// ends the earlier tokens; nil: it ends nothing.
		after func() string
	}{
		{"pool condition changed", func(pool string) error {
			_, err := svc.UpdatePool(ctx, admin, pool, pools.PoolUpdate{Condition: str(`assertion.repository_owner == "acme"`)})
			return err
		}, func() string { return mint(m.issuer) }},
		{"pool subject mapping changed", func(pool string) error {
			_, err := svc.UpdatePool(ctx, admin, pool, pools.PoolUpdate{Subject: str(`"gh:" + assertion.sub`)})
			return err
		}, func() string { return mint(m.issuer) }},
		{"provider issuer changed", func(pool string) error {
			_, err := svc.UpdateProvider(ctx, admin, pool, "p", pools.ProviderUpdate{Issuer: &elsewhere.URL})
			return err
		}, func() string { return mint(elsewhere) }},
		{"provider audience removed", func(pool string) error {
			_, err := svc.UpdateProvider(ctx, admin, pool, "p", pools.ProviderUpdate{Audiences: list("lf")})
			return err
		}, func() string { return mint(m.issuer) }},
		{"pool moved to another organization and back", func(pool string) error {
			// While in globex its acme tokens are refused; back in
			// acme, they must not come back to life.
			if _, err := svc.UpdatePool(ctx, admin, pool, pools.PoolUpdate{OrgID: str("globex")}); err != nil {
				return err
			}
			_, err := svc.UpdatePool(ctx, admin, pool, pools.PoolUpdate{OrgID: str("acme")})
			return err
		}, func() string { return mint(m.issuer) }},
		{"pool display name changed", func(pool string) error {
			_, err := svc.UpdatePool(ctx, admin, pool, pools.PoolUpdate{DisplayName: str("Release pipelines")})
			return err
		}, nil},
		{"pool scopes and lifetime changed", func(pool string) error {
			lifetime := 30 * time.Minute
			_, err := svc.UpdatePool(ctx, admin, pool, pools.PoolUpdate{Scopes: list("read", "write", ScopeOfflineAccess), MaxTokenLifetime: &lifetime})
			return err
		}, nil},
		{"provider audience added", func(pool string) error {
			_, err := svc.UpdateProvider(ctx, admin, pool, "p", pools.ProviderUpdate{Audiences: list("lf", "old", "new")})
			return err
		}, nil},
	}
	// Each case has a pool of its own, trusting the test issuer.
	var ids []string
	for i := range cases {
		id := fmt.Sprintf("tc%d", i)
		ids = append(ids, id)
		if _, err := svc.CreatePool(ctx, admin, storage.Pool{ID: id, OrgID: "acme", Condition: "true",
			Scopes: []string{"read", ScopeOfflineAccess}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateProvider(ctx, admin, storage.Provider{PoolID: id, ID: "p", Issuer: m.issuer.URL,
			Audiences: []string{"lf", "old"}}); err != nil {
			t.Fatal(err)
		}
	}
	c, sec = m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: ids, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer}})
	for i, tc := range cases {
		pool := ids[i]
		at, rt := exchange(pool, mint(m.issuer))
		if _, err := verifier.VerifyAccessToken(ctx, at, stsIssuer); err != nil {
			t.Fatalf("%s: the token before the change: %v", tc.name, err)
		}
		if err := tc.change(pool); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err := verifier.VerifyAccessToken(ctx, at, stsIssuer)
		status := refresh(rt)
		if tc.after == nil {
			if err != nil || status != http.StatusOK {
				t.Errorf("%s: the earlier token = %v, its refresh = %d; want both to live", tc.name, err, status)
			}
			continue
		}
		if tokens.Reason(err) != "token_revoked" || status != http.StatusBadRequest {
			t.Errorf("%s: the earlier token = %v (reason %q), its refresh = %d; want token_revoked, 400", tc.name, err, tokens.Reason(err), status)
		}
		time.Sleep(1100 * time.Millisecond) // past the change's second: iat has whole seconds
		at, rt = exchange(pool, tc.after())
		if _, err := verifier.VerifyAccessToken(ctx, at, stsIssuer); err != nil {
			t.Errorf("%s: a token exchanged after the change: %v", tc.name, err)
		}
		if status := refresh(rt); status != http.StatusOK {
			t.Errorf("%s: the refresh of a family begun after the change = %d, want 200", tc.name, status)
		}
	}
}

// TestRevocationRowOutlivesItsFamilies (docs/security.md ): the
// row a change of trust or a deletion stores outlives every refresh family
// exchanged through the pool before it. Such a family lives as long as the
// subject token it came from (up to federation.DefaultMaxTokenAge, longer
// than keys.max_token_lifetime), so a row kept only for the longest access
// token was collected while the family could still refresh under the old
// trust, or under a pool created again with the same ID.
func TestRevocationRowOutlivesItsFamilies(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, svc *pools.Service, admin pools.Caller, issuer string)
	}{
		{"condition changed", func(t *testing.T, svc *pools.Service, admin pools.Caller, _ string) {
			if _, err := svc.UpdatePool(t.Context(), admin, "zz", pools.PoolUpdate{Condition: str(`assertion.sub == "nobody"`)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted and created again", func(t *testing.T, svc *pools.Service, admin pools.Caller, issuer string) {
			if _, err := svc.DeletePool(t.Context(), admin, "zz"); err != nil {
				t.Fatal(err)
			}
			createRowPool(t, svc, admin, issuer)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatrixEnvOn(t, nil)
			ctx := t.Context()
			svc, err := pools.NewService(m.store, pools.Limits{MaxTokenLifetime: 12 * time.Hour, AllowLoopback: true})
			if err != nil {
				t.Fatal(err)
			}
			svc.SetOnChange(m.grant.Trust.Refresh)
			admin := pools.Caller{Actor: "admin"}
			createRowPool(t, svc, admin, m.issuer.URL)
			c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
				Pools: []string{"zz"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer}})
			cl := m.issuer.claims(time.Now(), "u-1")
			cl["aud"] = "lf"
			cl["exp"] = time.Now().Add(23 * time.Hour).Unix() // a day-long upstream token
			status, body := m.postAs(t, c.ID, sec, exchangeForm(m.issuer.mint(t, "RS256", cl), "pool", "zz", "scope", "read offline_access"))
			rt, _ := body["refresh_token"].(string)
			if status != http.StatusOK || rt == "" {
				t.Fatalf("exchange = %d %v", status, body)
			}
			tc.change(t, svc, admin, m.issuer.URL)
			// Past the longest access token's life (and the leeway), the
			// collector runs; the family's subject token is still valid.
			if _, err := m.store.GarbageCollect(ctx, time.Now().Add(13*time.Hour)); err != nil {
				t.Fatal(err)
			}
			st, b := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
			// Refused by the row, not by anything else about the family.
			if st != http.StatusBadRequest || b["reason"] != "token_revoked" {
				t.Fatalf("refresh of a family exchanged before the change, after 13 h = %d %v %v; want 400 token_revoked", st, b["error"], b["reason"])
			}
		})
	}
}

func createRowPool(t *testing.T, svc *pools.Service, admin pools.Caller, issuer string) {
	t.Helper()
	if _, err := svc.CreatePool(t.Context(), admin, storage.Pool{ID: "zz", OrgID: "acme", Condition: "true",
		Scopes: []string{"read", ScopeOfflineAccess}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateProvider(t.Context(), admin, storage.Provider{PoolID: "zz", ID: "p", Issuer: issuer,
		Audiences: []string{"lf"}}); err != nil {
		t.Fatal(err)
	}
}
