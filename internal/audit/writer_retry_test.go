package audit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
)

// flakyStore fails the first failures AppendAudit calls (all of them when
// failures < 0), then passes them to the real store.
type flakyStore struct {
	storage.AuditStore
	failures atomic.Int64
	calls    atomic.Int64
}

var errOutage = errors.New("database unreachable")

func (s *flakyStore) AppendAudit(ctx context.Context, evs ...storage.AuditEvent) error {
	s.calls.Add(1)
	if n := s.failures.Load(); n != 0 {
		if n > 0 {
			s.failures.Add(-1)
		}
		return errOutage
	}
	return s.AuditStore.AppendAudit(ctx, evs...)
}

// TestFailedBatchIsRetried: a batch that fails during a short outage is
// retried with backoff and stored once the database is back; nothing is
// lost (docs/security.md D-10).
func TestFailedBatchIsRetried(t *testing.T) {
	t.Parallel()
	store := &flakyStore{AuditStore: ststest.NewStore(t)}
	store.failures.Store(3)
	var lost atomic.Int64
	w := &audit.Writer{Store: store, Batch: 10, FlushEvery: 10 * time.Millisecond,
		RetryBackoff: time.Millisecond, OnLost: func(_ string, n int) { lost.Add(int64(n)) }}
	stop := start(w)
	for i := range 25 {
		w.Record(event(i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for stored(t, store) < 25 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if n := stored(t, store); n != 25 {
		t.Errorf("stored = %d after the outage, want all 25", n)
	}
	if s := w.Stats(); s.Written != 25 || s.Lost() != 0 || s.Retries < 3 {
		t.Errorf("Stats() = %+v, want 25 written, none lost, at least 3 retries", s)
	}
	if lost.Load() != 0 {
		t.Errorf("OnLost counted %d events, want 0", lost.Load())
	}
}

// TestLostEventsAreCounted: when the store never comes back, shutdown
// gives up within DrainTimeout and counts every lost event, not batches.
func TestLostEventsAreCounted(t *testing.T) {
	t.Parallel()
	store := &flakyStore{AuditStore: ststest.NewStore(t)}
	store.failures.Store(-1)
	var lost atomic.Int64
	w := &audit.Writer{Store: store, Batch: 4, FlushEvery: time.Hour, RetryBackoff: time.Millisecond,
		DrainTimeout: 200 * time.Millisecond, OnLost: func(reason string, n int) {
			if reason != audit.LostStoreError {
				t.Errorf("OnLost reason %q, want %q", reason, audit.LostStoreError)
			}
			lost.Add(int64(n))
		}}
	for i := range 10 {
		w.Record(event(i))
	}
	if got := w.QueueLen(); got != 10 {
		t.Errorf("QueueLen() = %d, want 10", got)
	}
	began := time.Now()
	start(w)()
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("shutdown took %v with the store down, want about DrainTimeout", took)
	}
	if lost.Load() != 10 || w.Stats().Failed != 10 {
		t.Errorf("lost = %d (Stats %+v), want 10 events", lost.Load(), w.Stats())
	}
	if got := w.QueueLen(); got != 0 {
		t.Errorf("QueueLen() after shutdown = %d, want 0", got)
	}
}

// TestCommitGroupsWaiters: Commit returns once its event is stored, and
// concurrent callers share batches (group commit) instead of one
// transaction each (docs/security.md D-11).
func TestCommitGroupsWaiters(t *testing.T) {
	t.Parallel()
	store := &countingStore{AuditStore: ststest.NewStore(t)}
	w := &audit.Writer{Store: store, Batch: 64, FlushEvery: time.Hour}
	stop := start(w)
	defer stop()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- w.Commit(t.Context(), event(i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Commit() = %v", err)
		}
	}
	if got := stored(t, store); got != n {
		t.Fatalf("stored = %d right after every Commit returned, want %d", got, n)
	}
	if b := len(store.sizes()); b >= n/2 {
		t.Errorf("%d commits took %d batches, want them grouped", n, b)
	}
}

// TestCommitFailsClosed: with the store failing, Commit returns an error
// within CommitTimeout and the event is not retried into the trail later
// (its request answered 503 and issued nothing).
func TestCommitFailsClosed(t *testing.T) {
	t.Parallel()
	store := &flakyStore{AuditStore: ststest.NewStore(t)}
	store.failures.Store(-1)
	w := &audit.Writer{Store: store, FlushEvery: time.Hour, RetryBackoff: time.Millisecond, CommitTimeout: time.Second}
	stop := start(w)
	began := time.Now()
	err := w.Commit(t.Context(), event(1))
	if err == nil {
		t.Fatal("Commit() = nil with the store down, want an error")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Commit took %v, want at most about CommitTimeout", took)
	}
	store.failures.Store(0)
	stop()
	if n := stored(t, store); n != 0 {
		t.Errorf("stored = %d, want the refused event never written", n)
	}
	// A full buffer refuses at once rather than waiting.
	full := &audit.Writer{Store: store, Buffer: 1}
	full.Record(event(2))
	if err := full.Commit(t.Context(), event(3)); !errors.Is(err, audit.ErrBufferFull) {
		t.Errorf("Commit() on a full buffer = %v, want ErrBufferFull", err)
	}
}

// TestCommitPromptAfterOutage: once the store works again, a Commit is
// stored at once, not after the backoff of the Record-ed events still
// being retried (audit.mode required answered 503 for up to the 5 s
// backoff after an outage ended; docs/reliability.md#audit-after-an-outage).
func TestCommitPromptAfterOutage(t *testing.T) {
	t.Parallel()
	store := &flakyStore{AuditStore: ststest.NewStore(t)}
	store.failures.Store(-1)
	const backoff = 3 * time.Second // the pause the failed batch waits out
	w := &audit.Writer{Store: store, FlushEvery: time.Millisecond, RetryBackoff: backoff, CommitTimeout: 10 * time.Second}
	stop := start(w)
	defer stop()
	w.Record(event(1)) // a refusal's event, retried with backoff
	for store.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the retry is now waiting out its backoff
	// During the outage a Commit fails closed at once, not after the backoff.
	began := time.Now()
	if err := w.Commit(t.Context(), event(3)); err == nil {
		t.Fatal("Commit() during the outage = nil, want the store's error")
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("Commit took %v to fail during the outage, want well under a second", took.Round(time.Millisecond))
	}
	store.failures.Store(0) // the outage ends
	began = time.Now()
	if err := w.Commit(t.Context(), event(2)); err != nil {
		t.Fatalf("Commit() after the outage = %v", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("Commit took %v after the store came back, want well under a second (the backoff was %v)", took.Round(time.Millisecond), backoff)
	}
	if n := stored(t, store); n != 2 {
		t.Errorf("stored = %d, want the retried event and the committed one", n)
	}
}
