package trust_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/internal/trust"
)

// cutStore is a trust store this replica can stop reading (a partition
// between it and the database) while the other replicas still can.
type cutStore struct {
	storage.TrustStore
	cut atomic.Bool
}

var errCut = errors.New("connection refused")

func (s *cutStore) ListPools(ctx context.Context) ([]storage.Pool, error) {
	if s.cut.Load() {
		return nil, errCut
	}
	return s.TrustStore.ListPools(ctx)
}

// TestRegistryStaleSnapshotFailsClosed is docs/security.md F-108: a
// replica whose registry cannot be refreshed must not go on answering from
// the snapshot it last loaded. A pool disabled through another replica
// (here: straight in the shared store) was never seen by this one, which
// kept admitting exchanges through it and answering its tokens' source
// check from the old snapshot for as long as its refreshes failed. The
// snapshot is used while its read began less than MaxAge ago (twice the
// refresh interval); past it every lookup reads storage once more, and
// fails closed (trust_unavailable, 503) while it cannot, and Lookup says
// it does not know, so the token endpoint asks Select.
func TestRegistryStaleSnapshotFailsClosed(t *testing.T) {
	ctx := t.Context()
	store := ststest.NewStore(t)
	if err := store.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreatePool(ctx, storage.Pool{ID: "a", OrgID: "acme", Condition: "true"}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateProvider(ctx, storage.Provider{PoolID: "a", ID: "p", Issuer: "https://issuer.example", Audiences: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	compiler, err := policy.NewCompiler(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func(d time.Duration) { now.Add(int64(d)) }
	cs := &cutStore{TrustStore: store}
	r := &trust.Registry{Store: cs, Compiler: compiler, Now: clock}
	byIssuer := trust.Selector{Issuer: "https://issuer.example", Audiences: []string{"a"}}
	if _, err := r.Check(ctx, "a", "p"); err != nil {
		t.Fatal(err)
	}

	// Another replica disables the pool; this one can no longer read.
	cs.cut.Store(true)
	if err := store.UpdatePool(ctx, "a", func(p storage.Pool) (storage.Pool, error) { p.Disabled = true; return p, nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded through a cut store")
	}
	// Within the bound the snapshot serves, as before (no outage for a
	// failed refresh or two).
	advance(trust.DefaultRefreshInterval)
	if _, err := r.Check(ctx, "a", "p"); err != nil {
		t.Fatalf("Check within %v of the last load = %v, want the snapshot's answer", trust.DefaultRefreshInterval, err)
	}

	advance(trust.DefaultRefreshInterval + time.Second)
	if _, err := r.Check(ctx, "a", "p"); trust.ReasonOf(err) != trust.ReasonUnavailable {
		t.Errorf("Check %v after the last successful load, storage unreadable = %v; want %s (fail closed), not the old snapshot's answer",
			2*trust.DefaultRefreshInterval+time.Second, err, trust.ReasonUnavailable)
	}
	if _, err := r.Select(ctx, byIssuer); trust.ReasonOf(err) != trust.ReasonUnavailable {
		t.Errorf("Select on a stale snapshot = %v; want %s", err, trust.ReasonUnavailable)
	}
	if _, err := r.Select(ctx, trust.Selector{PoolID: "a"}); trust.ReasonOf(err) != trust.ReasonUnavailable {
		t.Errorf("Select by pool on a stale snapshot = %v; want %s", err, trust.ReasonUnavailable)
	}
	if _, err := r.Pools(ctx); trust.ReasonOf(err) != trust.ReasonUnavailable {
		t.Errorf("Pools on a stale snapshot = %v; want %s", err, trust.ReasonUnavailable)
	}
	if _, known, err := r.Lookup(byIssuer); known || err != nil {
		t.Errorf("Lookup on a stale snapshot = known %v, %v; want unknown (the caller asks Select)", known, err)
	}

	// The store readable again: the next lookup past MinRefresh (failed
	// reloads are spaced so) reads it and sees the change made elsewhere.
	cs.cut.Store(false)
	advance(trust.DefaultMinRefresh)
	if _, err := r.Check(ctx, "a", "p"); trust.ReasonOf(err) != trust.ReasonPoolDisabled {
		t.Errorf("Check once storage answers again = %v; want %s", err, trust.ReasonPoolDisabled)
	}
}
