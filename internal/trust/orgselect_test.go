package trust_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/internal/trust"
)

// TestOrgSelectionRefreshesOnMiss (docs/security.md A-84): a pool an
// organization created on another replica, after this one's snapshot, is
// found by the first selection by issuer for that organization's client,
// which reads storage again on the miss, whether or not another
// organization's pool trusts the same issuer. Before, such a pool made the
// selection a hit in the snapshot, answered issuer_unknown until the
// periodic refresh: another organization could switch the immediate
// pickup off. A refusal among the organization's own pools is that
// organization's to audit (D-19).
func TestOrgSelectionRefreshesOnMiss(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		t.Run(map[bool]string{false: "no other organization's pool", true: "another organization's pool trusts the issuer"}[foreign], func(t *testing.T) {
			ctx := t.Context()
			store := ststest.NewStore(t)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(store.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme"}))
			must(store.CreateOrganization(ctx, storage.Organization{ID: "evil", Name: "Evil"}))
			if foreign {
				must(store.CreatePool(ctx, storage.Pool{ID: "squat", OrgID: "evil", Condition: "false"}))
				must(store.CreateProvider(ctx, storage.Provider{PoolID: "squat", ID: "p", Issuer: iss, Audiences: []string{"other"}}))
			}
			compiler, err := policy.NewCompiler(policy.Options{})
			must(err)
			clock := time.Unix(1_800_000_000, 0)
			r := &trust.Registry{Store: store, Compiler: compiler, Now: func() time.Time { return clock }}
			must(r.Refresh(ctx))
			must(store.CreatePool(ctx, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true"}))
			must(store.CreateProvider(ctx, storage.Provider{PoolID: "ci", ID: "p", Issuer: iss, Audiences: []string{"sts"}}))
			clock = clock.Add(2 * time.Second)
			sel := trust.Selector{Issuer: iss, Audiences: []string{"sts"}, OrgID: "acme"}
			if _, known, err := r.Lookup(sel); known {
				t.Errorf("Lookup from the old snapshot: known, %v; want a miss for Select to answer", err)
			}
			if m, err := r.Select(ctx, sel); err != nil || m.Pool.ID != "ci" {
				t.Fatalf("Select: %v, %v; want acme's new pool ci", m.Pool, err)
			}
			// Among its own pools, a refusal is acme's (the audit trail's
			// organization).
			must(store.CreatePool(ctx, storage.Pool{ID: "ci2", OrgID: "acme", Condition: "true"}))
			must(store.CreateProvider(ctx, storage.Provider{PoolID: "ci2", ID: "p", Issuer: iss, Audiences: []string{"sts"}}))
			must(r.Refresh(ctx))
			_, err = r.Select(ctx, sel)
			if trust.ReasonOf(err) != trust.ReasonAmbiguousPool || trust.OrgOf(err) != "acme" {
				t.Errorf("two of acme's pools: %v (organization %q), want ambiguous_pool about acme", err, trust.OrgOf(err))
			}
		})
	}
}
