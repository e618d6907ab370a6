package cache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/ststest/clocktest"
)

// countingStore counts the revocation reads that reach storage, and fails
// them while down is set.
type countingStore struct {
	storage.Store
	reads atomic.Int64
	down  atomic.Bool
}

var errDown = errors.New("storage down")

func (c *countingStore) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	c.reads.Add(1)
	if c.down.Load() {
		return nil, errDown
	}
	return c.Store.GetRevocations(ctx, ids...)
}

func (c *countingStore) ListRevocations(ctx context.Context, since time.Time) ([]storage.Revocation, error) {
	if c.down.Load() {
		return nil, errDown
	}
	return c.Store.ListRevocations(ctx, since)
}

// revEnv is one SQLite file seen by this server (here, with the view on)
// and by another process (elsewhere, the break-glass CLI).
type revEnv struct {
	elsewhere storage.Store
	backend   *countingStore
	here      *cache.Store
	clock     *clocktest.Clock
}

func newRevEnv(t *testing.T) *revEnv {
	t.Helper()
	a, b := sharedFile(t)
	e := &revEnv{elsewhere: a, backend: &countingStore{Store: b}, clock: clocktest.New(time.Now())}
	e.here = cache.New(e.backend)
	e.here.Now = e.clock.Now
	e.here.EnableRevocations()
	if err := e.here.SyncRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *revEnv) revocation(id string, created time.Time) storage.Revocation {
	return storage.Revocation{ID: id, Reason: "test", CreatedAt: storage.Now(created), ExpiresAt: storage.Now(created.Add(time.Hour))}
}

// revoked asks here for id and reports whether it is revoked and whether
// the answer came from memory.
func (e *revEnv) revoked(t *testing.T, id string) (revoked, fromMemory bool) {
	t.Helper()
	before := e.backend.reads.Load()
	rs, err := e.here.GetRevocations(t.Context(), id, "sub:nobody")
	if err != nil {
		t.Fatalf("GetRevocations(%s) = %v", id, err)
	}
	return len(rs) == 1 && rs[0].ID == id, e.backend.reads.Load() == before
}

// A revocation written through this store is refused by the next check,
// answered from memory; one written by another process is seen at the
// next catch-up, and the view never answers once it is stale.
func TestRevocationView(t *testing.T) {
	t.Parallel()
	e := newRevEnv(t)
	ctx := t.Context()

	if got, mem := e.revoked(t, "jti:a"); got || !mem {
		t.Fatalf("unrevoked jti: revoked=%v fromMemory=%v, want false from memory", got, mem)
	}
	if err := e.here.PutRevocation(ctx, e.revocation("jti:a", e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if got, mem := e.revoked(t, "jti:a"); !got || !mem {
		t.Fatalf("revoked here: revoked=%v fromMemory=%v, want revoked at once, from memory", got, mem)
	}

	// Elsewhere, stamped before the last catch-up began (a writer stamps
	// created_at before it commits): the overlap still finds it.
	if err := e.elsewhere.PutRevocation(ctx, e.revocation("jti:b", e.clock.Now().Add(-10*time.Second))); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(cache.RevocationPoll)
	if err := e.here.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if got, mem := e.revoked(t, "jti:b"); !got || !mem {
		t.Fatalf("revoked elsewhere, after a catch-up: revoked=%v fromMemory=%v", got, mem)
	}

	// No catch-up for 2 polls: the view is stale and checks read storage,
	// which has what elsewhere wrote since.
	if err := e.elsewhere.PutRevocation(ctx, e.revocation("jti:c", e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * cache.RevocationPoll)
	if got, mem := e.revoked(t, "jti:c"); !got || mem {
		t.Fatalf("stale view: revoked=%v fromMemory=%v, want revoked, read from storage", got, mem)
	}
	// Stale and storage down: the check fails, it does not answer from memory.
	e.backend.down.Store(true)
	if _, err := e.here.GetRevocations(ctx, "jti:zzz"); !errors.Is(err, errDown) {
		t.Fatalf("stale view, storage down: err = %v, want the storage error", err)
	}
	if err := e.here.SyncRevocations(ctx); !errors.Is(err, errDown) {
		t.Fatalf("SyncRevocations with storage down = %v", err)
	}
	e.backend.down.Store(false)

	// Expired rows leave the view at the next catch-up.
	e.clock.Advance(2 * time.Hour)
	if err := e.here.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if got, mem := e.revoked(t, "jti:a"); got || !mem {
		t.Fatalf("expired revocation: revoked=%v fromMemory=%v, want dropped", got, mem)
	}
}

// A revocation stored in a unit of work (a pool's trust changed,
// docs/security.md A-62) is refused by the next check once the unit
// commits, from memory as PutRevocation's; one whose unit rolled back is
// nowhere.
func TestRevocationViewUnitOfWork(t *testing.T) {
	t.Parallel()
	e := newRevEnv(t)
	ctx := t.Context()
	boom := errors.New("rolled back")
	err := e.here.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.PutRevocation(ctx, e.revocation("pool:gone", e.clock.Now())); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want %v", err, boom)
	}
	if got, mem := e.revoked(t, "pool:gone"); got || !mem {
		t.Fatalf("row of a rolled-back unit: revoked=%v fromMemory=%v, want not revoked, from memory", got, mem)
	}
	if err := e.here.WithTx(ctx, func(tx storage.Tx) error {
		return tx.PutRevocation(ctx, e.revocation("pool:ci", e.clock.Now()))
	}); err != nil {
		t.Fatal(err)
	}
	if got, mem := e.revoked(t, "pool:ci"); !got || !mem {
		t.Fatalf("row of a committed unit: revoked=%v fromMemory=%v, want revoked at once, from memory", got, mem)
	}
}

// A subject revocation widened later keeps the later cut-off, whichever
// order the view learns the two in (as storage merges them).
func TestRevocationViewMergesLikeStorage(t *testing.T) {
	t.Parallel()
	e := newRevEnv(t)
	ctx := t.Context()
	now := storage.Now(e.clock.Now())
	early, late := e.revocation("sub:p", now), e.revocation("sub:p", now)
	early.IssuedBefore, late.IssuedBefore = now.Add(-time.Hour), now
	if err := e.elsewhere.PutRevocation(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := e.here.PutRevocation(ctx, early); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Millisecond)
	if err := e.here.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := e.here.GetRevocations(ctx, "sub:p")
	if err != nil || len(rs) != 1 || !rs[0].IssuedBefore.Equal(now) {
		t.Fatalf("GetRevocations = %+v, %v; want IssuedBefore %v", rs, err, now)
	}
}

// Beyond its row limit the view stops answering (checks read storage)
// rather than holding an unbounded map, and answers again once a reload
// fits.
func TestRevocationViewFull(t *testing.T) {
	defer cache.SetMaxRevocations(3)()
	e := newRevEnv(t)
	ctx := t.Context()
	for _, id := range []string{"jti:1", "jti:2", "jti:3", "jti:4"} {
		if err := e.here.PutRevocation(ctx, e.revocation(id, e.clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"jti:1", "jti:4"} {
		if got, mem := e.revoked(t, id); !got || mem {
			t.Fatalf("full view, %s: revoked=%v fromMemory=%v, want revoked, read from storage", id, got, mem)
		}
	}
	// GC removes two rows; a reload before the retry time does nothing.
	e.clock.Advance(time.Second)
	if err := e.here.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, mem := e.revoked(t, "jti:1"); mem {
		t.Fatal("full view answered before its retry")
	}
	if _, err := e.elsewhere.GarbageCollect(ctx, e.clock.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.here.PutRevocation(ctx, e.revocation("jti:5", e.clock.Now().Add(3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	if err := e.here.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if got, mem := e.revoked(t, "jti:5"); !got || !mem {
		t.Fatalf("after a reload that fits: revoked=%v fromMemory=%v", got, mem)
	}
}
