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

// countingStore records the size of every AppendAudit call and can be told
// to fail; everything else is the real SQLite store.
type countingStore struct {
	storage.AuditStore
	mu      sync.Mutex
	batches []int
	fail    error
}

func (s *countingStore) AppendAudit(ctx context.Context, evs ...storage.AuditEvent) error {
	s.mu.Lock()
	s.batches = append(s.batches, len(evs))
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	return s.AuditStore.AppendAudit(ctx, evs...)
}

func (s *countingStore) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.batches...)
}

func event(i int) storage.AuditEvent {
	return storage.AuditEvent{OrgID: "acme", Actor: "ci", Action: "token.exchange", Target: "pool:ci", Outcome: "success", RequestID: string(rune('a' + i%26))}
}

func stored(t *testing.T, s storage.AuditStore) int {
	t.Helper()
	evs, err := s.ListAudit(t.Context(), storage.AuditFilter{Limit: 100000})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return len(evs)
}

// start runs w until the returned stop is called; stop waits for Run.
func start(w *audit.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func TestEventsLandInBatches(t *testing.T) {
	t.Parallel()
	store := &countingStore{AuditStore: ststest.NewStore(t)}
	w := &audit.Writer{Store: store, Batch: 10, FlushEvery: time.Hour}
	stop := start(w)
	for i := range 25 {
		if !w.Record(event(i)) {
			t.Fatalf("Record(%d) = false with an empty buffer", i)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().Written < 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Two full batches are written at once; the last five wait for the
	// interval (an hour) or shutdown.
	if got := w.Stats().Written; got != 20 {
		t.Fatalf("written before shutdown = %d, want 20", got)
	}
	stop()
	if got, want := store.sizes(), []int{10, 10, 5}; !equal(got, want) {
		t.Errorf("batch sizes = %v, want %v", got, want)
	}
	if n := stored(t, store); n != 25 {
		t.Errorf("stored events = %d, want 25", n)
	}
	if s := w.Stats(); s != (audit.Stats{Written: 25}) {
		t.Errorf("Stats() = %+v, want 25 written", s)
	}
}

func TestFlushOnInterval(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	w := &audit.Writer{Store: store, FlushEvery: 20 * time.Millisecond}
	stop := start(w)
	defer stop()
	w.Record(event(1))
	deadline := time.Now().Add(5 * time.Second)
	for stored(t, store) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an event was not flushed by the interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	evs, _ := store.ListAudit(t.Context(), storage.AuditFilter{})
	if evs[0].ID == "" || evs[0].Time.IsZero() {
		t.Errorf("stored event lacks ID or Time: %+v", evs[0])
	}
}

// TestFullBufferDrops: Record never blocks; a full buffer drops, counts and
// calls OnDrop (a full buffer is a metric, never a stalled request).
func TestFullBufferDrops(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	var drops atomic.Int64
	w := &audit.Writer{Store: store, Buffer: 3, OnLost: func(_ string, n int) { drops.Add(int64(n)) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 { // Run is not started: nothing drains the buffer
			w.Record(event(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked on a full buffer")
	}
	if drops.Load() != 7 || w.Stats().Dropped != 7 {
		t.Errorf("drops = %d (Stats %d), want 7", drops.Load(), w.Stats().Dropped)
	}
	start(w)() // the three buffered events are written by the final flush
	if n := stored(t, store); n != 3 {
		t.Errorf("stored = %d, want the 3 buffered events", n)
	}
}

func TestFinalFlushOnShutdown(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	w := &audit.Writer{Store: store, Batch: 100, FlushEvery: time.Hour, DrainTimeout: time.Minute}
	stop := start(w)
	for i := range 250 {
		w.Record(event(i))
	}
	stop()
	if n := stored(t, store); n != 250 {
		t.Errorf("stored after shutdown = %d, want 250", n)
	}
}

func TestStorageFailureReported(t *testing.T) {
	t.Parallel()
	broken := errors.New("database is read-only")
	store := &countingStore{AuditStore: ststest.NewStore(t), fail: broken}
	var got []error
	var mu sync.Mutex
	w := &audit.Writer{Store: store, DrainTimeout: 100 * time.Millisecond, RetryBackoff: time.Millisecond,
		OnError: func(err error) { mu.Lock(); got = append(got, err); mu.Unlock() }}
	w.Record(event(1))
	w.Record(event(2))
	start(w)()
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || !errors.Is(got[0], broken) {
		t.Errorf("OnError got %v, want %v", got, broken)
	}
	if s := w.Stats(); s.Failed != 2 || s.Written != 0 {
		t.Errorf("Stats() = %+v, want 2 failed", s)
	}
	// The synchronous path returns the failure to its caller (F-17).
	if err := w.Append(t.Context(), event(3)); !errors.Is(err, broken) {
		t.Errorf("Append() = %v, want %v", err, broken)
	}
}

func TestAppendIsSynchronous(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	w := &audit.Writer{Store: store, Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	if err := w.Append(t.Context(), event(1)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	evs, err := store.ListAudit(t.Context(), storage.AuditFilter{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("ListAudit = %v, %v; want the event at once", evs, err)
	}
	if !evs[0].Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("Time = %v, want the injected clock", evs[0].Time)
	}
}

func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	w := &audit.Writer{Store: store, Batch: 32, FlushEvery: 10 * time.Millisecond, DrainTimeout: time.Minute}
	stop := start(w)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				w.Record(event(g*100 + i))
			}
		})
	}
	wg.Wait()
	stop()
	s := w.Stats()
	if s.Written+s.Dropped != 800 || s.Failed != 0 {
		t.Errorf("Stats() = %+v, want written+dropped = 800", s)
	}
	if n := stored(t, store); uint64(n) != s.Written {
		t.Errorf("stored %d, Stats().Written %d", n, s.Written)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
