package tokens_test

import (
	"testing"

	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// TestCheckFamilyFollowsWhatARefreshNeeds (docs/security.md A-82): a
// refresh family's template passes CheckFamily only while its client
// holds the refresh_token grant and its pool grants offline_access, as the
// refresh grant requires (grants.CheckClient, withinPool); CheckSource,
// which judges access tokens, asks neither.
func TestCheckFamilyFollowsWhatARefreshNeeds(t *testing.T) {
	ctx := t.Context()
	s, sa := sourceStore(t, storage.PrincipalServiceAccount)
	cl := sourceClient(t, s, sa.ID)
	pool := func(id string, scopes ...string) *trust.Pool {
		return &trust.Pool{Pool: storage.Pool{ID: id, OrgID: "acme", Scopes: scopes, PrincipalID: sa.ID}} // acting as sa
	}
	src := tokens.NewStoreSources(s, fakePools{
		"github":  {pool: pool("github", "read", grants.ScopeOfflineAccess)},
		"offline": {pool: pool("offline", "read")}, // offline_access taken since
	})
	src.TTL, src.Audiences = 0, []string{testAud}
	setGrants := func(gt ...string) {
		t.Helper()
		if err := s.UpdateClient(ctx, cl.ID, func(old storage.Client) (storage.Client, error) {
			old.GrantTypes, old.Pools = gt, []string{"github", "offline"}
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	family := func(pool string) *tokens.AccessClaims {
		c := &tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", Principal: string(sa.Kind), ClientID: cl.ID, Audience: tokens.Audience{testAud}}
		if pool != "" {
			c.Pool, c.Provider = pool, "p"
		}
		return c
	}
	setGrants(oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken)
	for _, tc := range []struct {
		pool  string
		alive bool
	}{{"", true}, {"github", true}, {"offline", false}} {
		if err := src.CheckFamily(ctx, family(tc.pool)); (err == nil) != tc.alive {
			t.Errorf("family of pool %q: CheckFamily = %v, want alive %v", tc.pool, err, tc.alive)
		}
		if err := src.CheckSource(ctx, family(tc.pool)); err != nil {
			t.Errorf("family of pool %q: CheckSource = %v, want nil", tc.pool, err)
		}
	}
	setGrants(oauth2.GrantTypeClientCredentials)
	if err := src.CheckFamily(ctx, family("")); err == nil {
		t.Error("family of a client without the refresh_token grant: CheckFamily = nil, want refused")
	}
}
