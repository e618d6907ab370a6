package audit

import (
	"context"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// countStore stores nothing and counts the events it is handed.
type countStore struct {
	storage.AuditStore
	n int
}

func (s *countStore) AppendAudit(_ context.Context, events ...storage.AuditEvent) error {
	s.n += len(events)
	return nil
}

// TestFlushReusesItsEvents: a flush hands the store the batch's events in
// a slice the writer keeps from batch to batch; it allocated 256 events'
// worth (47 KiB, about 184 bytes an event) for every batch
// (docs/performance.md "`client_credentials`, eleventh pass"). What a
// flush may allocate is its FlushTimeout context, measured alongside.
func TestFlushReusesItsEvents(t *testing.T) {
	store := &countStore{}
	w := &Writer{Store: store}
	items := make([]item, DefaultBatch)
	for i := range items {
		items[i].ev = testEvent()
	}
	base := context.Background()
	ctxAllocs := testing.AllocsPerRun(50, func() {
		_, cancel := context.WithTimeout(base, DefaultFlushTimeout)
		cancel()
	})
	batch := make([]item, 0, DefaultBatch)
	allocs := testing.AllocsPerRun(50, func() {
		batch = w.flush(base, base, append(batch[:0], items...))
	})
	if allocs > ctxAllocs {
		t.Errorf("a flush of %d events: %.0f allocations, want at most the %.0f of its timeout context", len(items), allocs, ctxAllocs)
	}
	if want := 51 * len(items); store.n != want {
		t.Errorf("the store was handed %d events, want %d", store.n, want)
	}
	// The kept events hold no strings of the batch stored.
	for i, e := range w.events[:cap(w.events)] {
		if e != (storage.AuditEvent{}) {
			t.Fatalf("kept event %d after the flush: %+v", i, e)
		}
	}
}
