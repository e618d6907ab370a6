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
	family := func(pool string) *tokens.FamilyTemplate {
		c := tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", Principal: string(sa.Kind), ClientID: cl.ID, Audience: tokens.Audience{testAud}}
		if pool != "" {
			c.Pool, c.Provider = pool, "p"
		}
		return &tokens.FamilyTemplate{AccessClaims: c, Grant: oauth2.GrantTypeTokenExchange}
	}
	setGrants(oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken)
	for _, tc := range []struct {
		pool  string
		alive bool
	}{{"", true}, {"github", true}, {"offline", false}} {
		if err := src.CheckFamily(ctx, family(tc.pool)); (err == nil) != tc.alive {
			t.Errorf("family of pool %q: CheckFamily = %v, want alive %v", tc.pool, err, tc.alive)
		}
		if err := src.CheckSource(ctx, &family(tc.pool).AccessClaims); err != nil {
			t.Errorf("family of pool %q: CheckSource = %v, want nil", tc.pool, err)
		}
	}
	setGrants(oauth2.GrantTypeTokenExchange)
	if err := src.CheckFamily(ctx, family("")); err == nil {
		t.Error("family of a client without the refresh_token grant: CheckFamily = nil, want refused")
	}
}

// TestCheckFamilyNeedsTheGrantThatBeganIt (docs/security.md A-98): a
// family passes CheckFamily, so its refresh token introspects active, only
// while its client holds the grant that began it, as the refresh grant
// requires. A family stored before the grant was recorded is judged by
// the grant its shape says began it.
func TestCheckFamilyNeedsTheGrantThatBeganIt(t *testing.T) {
	ctx := t.Context()
	s, sa := sourceStore(t, storage.PrincipalServiceAccount)
	cl := sourceClient(t, s, sa.ID)
	src := tokens.NewStoreSources(s, fakePools{
		"github": {pool: &trust.Pool{Pool: storage.Pool{ID: "github", OrgID: "acme", Scopes: []string{"read", grants.ScopeOfflineAccess}, PrincipalID: sa.ID}}},
	})
	src.TTL, src.Audiences = 0, []string{testAud}
	setGrants := func(gt ...string) {
		t.Helper()
		if err := s.UpdateClient(ctx, cl.ID, func(old storage.Client) (storage.Client, error) {
			old.GrantTypes, old.Pools = gt, []string{"github"}
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	family := func(pool, grant string) *tokens.FamilyTemplate {
		c := tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", Principal: string(sa.Kind), ClientID: cl.ID, Audience: tokens.Audience{testAud}}
		if pool != "" {
			c.Pool, c.Provider = pool, "p"
		}
		return &tokens.FamilyTemplate{AccessClaims: c, Grant: grant}
	}
	for _, tc := range []struct {
		name   string
		grants []string
		family *tokens.FamilyTemplate
		alive  bool
	}{
		{"token exchange held", []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken}, family("github", oauth2.GrantTypeTokenExchange), true},
		{"token exchange taken", []string{oauth2.GrantTypeJWTBearer, oauth2.GrantTypeRefreshToken}, family("github", oauth2.GrantTypeTokenExchange), false},
		{"jwt-bearer held", []string{oauth2.GrantTypeJWTBearer, oauth2.GrantTypeRefreshToken}, family("github", oauth2.GrantTypeJWTBearer), true},
		{"authorization_code held", []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}, family("", oauth2.GrantTypeAuthorizationCode), true},
		{"authorization_code taken", []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken}, family("", oauth2.GrantTypeAuthorizationCode), false},
		// A family stored before its grant was recorded is judged by the
		// grant its shape says began it: a person's family with no pool,
		// PAT, source or actor by authorization_code, any other by token
		// exchange or jwt-bearer, either held.
		{"unrecorded exchange, neither exchange grant held", []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}, family("github", ""), false},
		{"unrecorded exchange, jwt-bearer held", []string{oauth2.GrantTypeJWTBearer, oauth2.GrantTypeRefreshToken}, family("github", ""), true},
		{"unrecorded exchange, token exchange held", []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken}, family("github", ""), true},
		{"unrecorded authorization_code, taken", []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeJWTBearer, oauth2.GrantTypeRefreshToken}, family("", ""), false},
		{"unrecorded authorization_code, held", []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}, family("", ""), true},
	} {
		setGrants(tc.grants...)
		if err := src.CheckFamily(ctx, tc.family); (err == nil) != tc.alive {
			t.Errorf("%s: CheckFamily = %v, want alive %v", tc.name, err, tc.alive)
		}
	}
}
