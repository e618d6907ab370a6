package trust_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/internal/trust"
)

// countingStore counts the registry's rebuilds (one ListPools each).
type countingStore struct {
	storage.TrustStore
	lists atomic.Int32
}

func (s *countingStore) ListPools(ctx context.Context) ([]storage.Pool, error) {
	s.lists.Add(1)
	return s.TrustStore.ListPools(ctx)
}

// TestRegistryFirstLoadSingleFlight: the first concurrent requests after
// start share one rebuild of the registry instead of each rebuilding it in
// turn.
func TestRegistryFirstLoadSingleFlight(t *testing.T) {
	ctx := t.Context()
	_, cs, r := poolRegistry(t)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 32 {
		wg.Go(func() {
			<-start
			if _, err := r.Check(ctx, "a", ""); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := cs.lists.Load(); n != 1 {
		t.Errorf("32 concurrent first requests rebuilt the registry %d times, want 1", n)
	}
}

// TestRegistryLookupReadsNoStorage: Lookup answers from the loaded
// snapshot or says it cannot; it never loads or refreshes the registry.
func TestRegistryLookupReadsNoStorage(t *testing.T) {
	ctx := t.Context()
	store, cs, r := poolRegistry(t)
	if err := store.CreateProvider(ctx, storage.Provider{PoolID: "a", ID: "p", Issuer: "https://issuer.example", Audiences: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	byName := trust.Selector{PoolID: "a"}
	byIssuer := trust.Selector{Issuer: "https://issuer.example", Audiences: []string{"a"}}
	if _, known, err := r.Lookup(byName); known || err != nil || cs.lists.Load() != 0 {
		t.Fatalf("Lookup before the first load = %v, %v after %d loads; want unknown, no load", known, err, cs.lists.Load())
	}
	if _, err := r.Select(ctx, byName); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []trust.Selector{byName, byIssuer} {
		if m, known, err := r.Lookup(sel); !known || err != nil || m.Pool.ID != "a" || m.Provider.ID != "p" {
			t.Errorf("Lookup(%+v) = %v, %v, %v; want a/p from memory", sel, m, known, err)
		}
	}
	for _, sel := range []trust.Selector{{PoolID: "nope"}, {Issuer: "https://nope.example"}} {
		if _, known, err := r.Lookup(sel); known || err != nil {
			t.Errorf("Lookup(%+v) = %v, %v; want unknown (Select would refresh)", sel, known, err)
		}
	}
	if n := cs.lists.Load(); n != 1 {
		t.Errorf("%d loads, want Select's one", n)
	}
}

// poolRegistry is a store holding organization "acme" with pool "a"
// (condition true), and a registry over it whose pool-list reads are
// counted.
func poolRegistry(t *testing.T) (storage.Store, *countingStore, *trust.Registry) {
	t.Helper()
	store := ststest.NewStore(t)
	ctx := t.Context()
	if err := store.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreatePool(ctx, storage.Pool{ID: "a", OrgID: "acme", Condition: "true"}); err != nil {
		t.Fatal(err)
	}
	compiler, err := policy.NewCompiler(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{TrustStore: store}
	r := &trust.Registry{Store: cs, Compiler: compiler}
	return store, cs, r
}
