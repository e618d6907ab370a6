package server

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// purgeStore records PurgeAudit calls; the first returns a full batch so
// the GC job must come back for more.
type purgeStore struct {
	fakeStore
	mu     sync.Mutex
	before []time.Time
	limits []int
}

func (p *purgeStore) PurgeAudit(_ context.Context, before time.Time, limit int) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = append(p.before, before)
	p.limits = append(p.limits, limit)
	if len(p.before) == 1 {
		return int64(limit), nil
	}
	return 3, nil
}

// TestGCEnforcesAuditRetention: docs/security.md D-12. The GC job deletes
// audit events older than AuditRetention in bounded batches until a batch
// comes back short.
func TestGCEnforcesAuditRetention(t *testing.T) {
	store := &purgeStore{}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s, _ := newTest(t, Options{Store: store, GCInterval: time.Hour, AuditRetention: 90 * 24 * time.Hour,
		Now: func() time.Time { return now }}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		store.mu.Lock()
		n := len(store.before)
		store.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.before) != 2 {
		t.Fatalf("PurgeAudit called %d times, want 2 (a full batch, then a short one)", len(store.before))
	}
	for i, b := range store.before {
		if want := now.Add(-90 * 24 * time.Hour); !b.Equal(want) || store.limits[i] <= 0 || store.limits[i] > 10_000 {
			t.Errorf("PurgeAudit(before %v, limit %d), want before %v and a limit of at most 10 000", b, store.limits[i], want)
		}
	}
}
