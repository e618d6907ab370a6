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
