package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
)

// purgeCounter records the limit of every PurgeAudit call.
type purgeCounter struct {
	storage.AuditStore
	mu     sync.Mutex
	limits []int
}

func (s *purgeCounter) PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	s.mu.Lock()
	s.limits = append(s.limits, limit)
	s.mu.Unlock()
	return s.AuditStore.PurgeAudit(ctx, before, limit)
}

// TestRetentionPurgesInBoundedBatches: docs/security.md D-12. Events older
// than MaxAge go, newer ones stay, and no statement deletes more than
// Batch rows.
func TestRetentionPurgesInBoundedBatches(t *testing.T) {
	t.Parallel()
	store := &purgeCounter{AuditStore: ststest.NewStore(t)}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var evs []storage.AuditEvent
	for i := range 1500 { // older than 90 days
		evs = append(evs, storage.AuditEvent{ID: storage.NewID(), Time: now.Add(-91*24*time.Hour - time.Duration(i)*time.Second), Action: "old"})
	}
	for i := range 100 {
		evs = append(evs, storage.AuditEvent{ID: storage.NewID(), Time: now.Add(-time.Duration(i) * time.Hour), Action: "new"})
	}
	if err := store.AppendAudit(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	r := audit.Retention{Store: store, MaxAge: 90 * 24 * time.Hour, Batch: 400, Pause: time.Millisecond}
	n, err := r.Purge(t.Context(), now)
	if err != nil || n != 1500 {
		t.Fatalf("Purge = %d, %v; want 1500 rows", n, err)
	}
	for _, l := range store.limits {
		if l != 400 {
			t.Errorf("PurgeAudit limit %d, want 400", l)
		}
	}
	if c := len(store.limits); c != 4 {
		t.Errorf("PurgeAudit called %d times, want 4 (1500 rows in batches of 400)", c)
	}
	if got := stored(t, store); got != 100 {
		t.Errorf("events left = %d, want the 100 within retention", got)
	}
	// Zero MaxAge keeps everything forever.
	store.limits = nil
	if n, err := (audit.Retention{Store: store}).Purge(t.Context(), now.Add(1000*24*time.Hour)); n != 0 || err != nil || len(store.limits) != 0 {
		t.Errorf("Purge with MaxAge 0 = %d, %v after %d calls; want nothing deleted", n, err, len(store.limits))
	}
}

// TestRetentionStopsWithContext: a cancelled purge returns between batches.
func TestRetentionStopsWithContext(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (audit.Retention{Store: store, MaxAge: time.Hour}).Purge(ctx, time.Now()); err == nil {
		t.Error("Purge with a cancelled context = nil error")
	}
}
