package conformance

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func sortProviders(ps []storage.Provider) {
	slices.SortFunc(ps, func(a, b storage.Provider) int {
		return cmp.Or(cmp.Compare(a.PoolID, b.PoolID), cmp.Compare(a.ID, b.ID))
	})
}

func testTrustCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()

	pools, err := s.ListPools(ctx)
	mustNil(t, "ListPools() on a fresh store", err)
	if len(pools) != 0 {
		t.Fatalf("ListPools() on a fresh store = %d rows, want 0", len(pools))
	}

	full := newPool(t, s)
	// A pool with only the required fields: no principal, no mapping
	// attributes, no scopes, zero lifetime.
	minimal := storage.Pool{
		ID:        storage.NewID(),
		OrgID:     full.OrgID,
		CreatedAt: now(),
		UpdatedAt: now(),
	}
	mustNil(t, "CreatePool(minimal)", s.CreatePool(ctx, minimal))
	for _, p := range []storage.Pool{full, minimal} {
		got, err := s.GetPool(ctx, p.ID)
		mustNil(t, "GetPool", err)
		diff(t, "GetPool", p, got)
	}
	wantPools := []storage.Pool{full, minimal}
	slices.SortFunc(wantPools, func(a, b storage.Pool) int { return cmp.Compare(a.ID, b.ID) })
	pools, err = s.ListPools(ctx)
	mustNil(t, "ListPools", err)
	diff(t, "ListPools (ordered by ID)", wantPools, pools)

	// By principal: a pool of another organization bound to the same
	// principal is listed too (the trust file may bind one); an unbound
	// pool and a principal bound to nothing are not.
	otherOrg := newOrg(t, s)
	elsewhere := poolRecord(otherOrg.ID, full.PrincipalID)
	mustNil(t, "CreatePool(elsewhere)", s.CreatePool(ctx, elsewhere))
	wantBound := []storage.Pool{full, elsewhere}
	slices.SortFunc(wantBound, func(a, b storage.Pool) int { return cmp.Compare(a.ID, b.ID) })
	bound, err := s.ListPoolsOfPrincipal(ctx, full.PrincipalID)
	mustNil(t, "ListPoolsOfPrincipal", err)
	diff(t, "ListPoolsOfPrincipal (ordered by ID)", wantBound, bound)
	bound, err = s.ListPoolsOfPrincipal(ctx, storage.NewID())
	mustNil(t, "ListPoolsOfPrincipal(unbound)", err)
	if len(bound) != 0 {
		t.Errorf("ListPoolsOfPrincipal of a principal bound to nothing = %d pools, want 0", len(bound))
	}
	mustNil(t, "DeletePool(elsewhere)", s.DeletePool(ctx, elsewhere.ID))

	// Providers: the same provider ID may exist in two pools.
	provs := []storage.Provider{
		newProvider(t, s, full.ID, "gitlab"),
		newProvider(t, s, full.ID, "github"),
		newProvider(t, s, minimal.ID, "github"),
	}
	bare := storage.Provider{PoolID: minimal.ID, ID: "bare", Issuer: "https://issuer.example.com", CreatedAt: now(), UpdatedAt: now()}
	mustNil(t, "CreateProvider(bare)", s.CreateProvider(ctx, bare))
	provs = append(provs, bare)
	for _, p := range provs {
		got, err := s.GetProvider(ctx, p.PoolID, p.ID)
		mustNil(t, "GetProvider", err)
		diff(t, "GetProvider("+p.ID+")", p, got)
	}
	sortProviders(provs)
	all, err := s.ListProviders(ctx, "")
	mustNil(t, `ListProviders("")`, err)
	diff(t, `ListProviders("") (every pool, ordered by (PoolID, ID))`, provs, all)
	ofFull := []storage.Provider{}
	for _, p := range provs {
		if p.PoolID == full.ID {
			ofFull = append(ofFull, p)
		}
	}
	got, err := s.ListProviders(ctx, full.ID)
	mustNil(t, "ListProviders(pool)", err)
	diff(t, "ListProviders(pool) (ordered by ID)", ofFull, got)

	// UpdatePool round-trips changed nested fields.
	upd := full
	upd.DisplayName = odd("renamed pool")
	upd.Disabled = false
	upd.Mapping = storage.Mapping{Subject: "assertion.email", Attributes: map[string]string{"team": "assertion.team"}}
	upd.Scopes = []string{"only"}
	upd.MaxTokenLifetime = 15 * time.Minute
	upd.AllowUnauthenticated = false
	upd.Audiences = []string{"https://other.example"}
	upd.GoogleDefaultScopes = nil
	upd.UpdatedAt = full.UpdatedAt.Add(time.Minute)
	err = s.UpdatePool(ctx, full.ID, func(old storage.Pool) (storage.Pool, error) {
		diff(t, "UpdatePool updater's old row", full, old)
		return upd, nil
	})
	mustNil(t, "UpdatePool", err)
	gotPool, err := s.GetPool(ctx, full.ID)
	mustNil(t, "GetPool after update", err)
	diff(t, "GetPool after update", upd, gotPool)

	// UpdateProvider changes only the addressed (PoolID, ID) pair.
	target := providerRecord(full.ID, "github")
	updP := target
	updP.Issuer = "https://gitlab.example.com"
	updP.JWKSURI = ""
	updP.JWKS = nil
	updP.Audiences = []string{"x"}
	updP.Algorithms = nil
	updP.OneTimeUse = false
	updP.AllowMissingKID = false
	updP.Disabled = false
	var oldSeen storage.Provider
	err = s.UpdateProvider(ctx, full.ID, "github", func(old storage.Provider) (storage.Provider, error) {
		oldSeen = old
		updP.CreatedAt, updP.UpdatedAt = old.CreatedAt, old.UpdatedAt.Add(time.Second)
		return updP, nil
	})
	mustNil(t, "UpdateProvider", err)
	if oldSeen.PoolID != full.ID || oldSeen.ID != "github" {
		t.Errorf("UpdateProvider updater saw (%q, %q), want (%q, %q)", oldSeen.PoolID, oldSeen.ID, full.ID, "github")
	}
	gotProv, err := s.GetProvider(ctx, full.ID, "github")
	mustNil(t, "GetProvider after update", err)
	diff(t, "GetProvider after update", updP, gotProv)
	other, err := s.GetProvider(ctx, minimal.ID, "github")
	mustNil(t, "GetProvider(other pool)", err)
	if other.Issuer != target.Issuer {
		t.Errorf("provider github in the other pool has Issuer %q after updating the first pool's, want %q", other.Issuer, target.Issuer)
	}

	mustNil(t, "DeleteProvider", s.DeleteProvider(ctx, full.ID, "gitlab"))
	_, err = s.GetProvider(ctx, full.ID, "gitlab")
	wantErrIs(t, "GetProvider after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeleteProvider twice", s.DeleteProvider(ctx, full.ID, "gitlab"), storage.ErrNotFound)
	// Deleting (full, github) must not touch (minimal, github).
	mustNil(t, "DeleteProvider", s.DeleteProvider(ctx, full.ID, "github"))
	_, err = s.GetProvider(ctx, minimal.ID, "github")
	mustNil(t, "GetProvider of the same ID in another pool after delete", err)

	mustNil(t, "DeletePool", s.DeletePool(ctx, full.ID))
	_, err = s.GetPool(ctx, full.ID)
	wantErrIs(t, "GetPool after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeletePool twice", s.DeletePool(ctx, full.ID), storage.ErrNotFound)
	pools, err = s.ListPools(ctx)
	mustNil(t, "ListPools after delete", err)
	diff(t, "ListPools after delete", []storage.Pool{minimal}, pools)
}

func testProviderRequiresPool(t *testing.T, s storage.Store) {
	ctx := t.Context()
	missing := storage.NewID()
	err := s.CreateProvider(ctx, providerRecord(missing, "github"))
	wantErrIs(t, "CreateProvider for a missing pool", err, storage.ErrNotFound)
	_, err = s.GetProvider(ctx, missing, "github")
	wantErrIs(t, "GetProvider after a refused create", err, storage.ErrNotFound)
	all, err := s.ListProviders(ctx, "")
	mustNil(t, `ListProviders("")`, err)
	if len(all) != 0 {
		t.Errorf(`ListProviders("") after a refused create = %d rows, want 0`, len(all))
	}
}

func testDeletePoolDeletesProviders(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a, b := newPool(t, s), newPool(t, s)
	newProvider(t, s, a.ID, "one")
	newProvider(t, s, a.ID, "two")
	keep := newProvider(t, s, b.ID, "one")

	mustNil(t, "DeletePool", s.DeletePool(ctx, a.ID))
	for _, id := range []string{"one", "two"} {
		_, err := s.GetProvider(ctx, a.ID, id)
		wantErrIs(t, "GetProvider of a deleted pool's provider", err, storage.ErrNotFound)
	}
	got, err := s.ListProviders(ctx, a.ID)
	mustNil(t, "ListProviders(deleted pool)", err)
	if len(got) != 0 {
		t.Errorf("ListProviders(deleted pool) = %d rows, want 0", len(got))
	}
	all, err := s.ListProviders(ctx, "")
	mustNil(t, `ListProviders("")`, err)
	diff(t, `ListProviders("") after DeletePool`, []storage.Provider{keep}, all)

	// Re-creating the pool does not resurrect its providers, and their IDs
	// are free again.
	mustNil(t, "CreatePool(same ID again)", s.CreatePool(ctx, a))
	got, err = s.ListProviders(ctx, a.ID)
	mustNil(t, "ListProviders(re-created pool)", err)
	if len(got) != 0 {
		t.Errorf("ListProviders(re-created pool) = %d rows, want 0", len(got))
	}
	newProvider(t, s, a.ID, "one")
}
