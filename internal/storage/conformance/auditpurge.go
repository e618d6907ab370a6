package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testAuditLargeBatchAllOrNone: a batch larger than one statement's rows is
// stored whole, and a batch with a taken ID stores none of its events
// (AppendAudit is all or none however the backend splits it).
func testAuditLargeBatchAllOrNone(t *testing.T, s storage.Store) {
	ctx := t.Context()
	org := newOrg(t, s)
	t0 := now()
	batch := make([]storage.AuditEvent, 1200)
	for i := range batch {
		batch[i] = auditRecord(org.ID, t0.Add(time.Duration(i)*time.Millisecond))
	}
	mustNil(t, "AppendAudit(1200 events)", s.AppendAudit(ctx, batch...))
	got, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: org.ID, Limit: 5000})
	mustNil(t, "ListAudit", err)
	if len(got) != len(batch) {
		t.Fatalf("ListAudit = %d events, want %d", len(got), len(batch))
	}
	// 900 new events, then one whose ID is taken: nothing of it is stored.
	bad := make([]storage.AuditEvent, 901)
	for i := range 900 {
		bad[i] = auditRecord(org.ID, t0.Add(time.Hour))
	}
	bad[900] = batch[0]
	if err := s.AppendAudit(ctx, bad...); err == nil {
		t.Fatal("AppendAudit with a taken ID = nil, want an error")
	}
	got, err = s.ListAudit(ctx, storage.AuditFilter{OrgID: org.ID, Since: t0.Add(30 * time.Minute), Limit: 5000})
	mustNil(t, "ListAudit", err)
	if len(got) != 0 {
		t.Errorf("a failed batch left %d of its events stored, want 0", len(got))
	}
}

// testAuditPurgeBounded: PurgeAudit deletes only events older than the
// cut-off, oldest first, never more than its limit per call; events
// without a time are kept (docs/security.md D-12).
func testAuditPurgeBounded(t *testing.T, s storage.Store) {
	ctx := t.Context()
	org := newOrg(t, s)
	cut := now().Add(-24 * time.Hour)
	var old, fresh []storage.AuditEvent
	for i := range 2500 {
		old = append(old, auditRecord(org.ID, cut.Add(-time.Duration(i+1)*time.Second)))
	}
	for i := range 500 {
		fresh = append(fresh, auditRecord(org.ID, cut.Add(time.Duration(i)*time.Second)))
	}
	untimed := auditRecord(org.ID, time.Time{})
	mustNil(t, "AppendAudit(old)", s.AppendAudit(ctx, old...))
	mustNil(t, "AppendAudit(fresh)", s.AppendAudit(ctx, append(fresh, untimed)...))

	if _, err := s.PurgeAudit(ctx, cut, 0); err == nil {
		t.Error("PurgeAudit(limit 0) = nil error, want a refusal")
	}
	var total int64
	for calls := 0; ; calls++ {
		if calls > 10 {
			t.Fatal("PurgeAudit did not finish in 10 calls of 1000")
		}
		n, err := s.PurgeAudit(ctx, cut, 1000)
		mustNil(t, "PurgeAudit", err)
		if n > 1000 {
			t.Fatalf("PurgeAudit(limit 1000) deleted %d rows", n)
		}
		if calls == 0 {
			// The first batch takes the oldest events.
			rest, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: org.ID, Until: cut, Limit: 5000})
			mustNil(t, "ListAudit", err)
			if len(rest) != 1500 || !rest[len(rest)-1].Time.Equal(old[1499].Time) {
				t.Fatalf("after one batch: %d old events left, want the newest 1500", len(rest))
			}
		}
		total += n
		if n == 0 {
			break
		}
	}
	if total != int64(len(old)) {
		t.Errorf("PurgeAudit deleted %d rows in total, want %d", total, len(old))
	}
	got, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: org.ID, Limit: 5000})
	mustNil(t, "ListAudit", err)
	if len(got) != len(fresh)+1 {
		t.Errorf("%d events left, want the %d fresh ones and the untimed one", len(got), len(fresh)+1)
	}
	for _, e := range got {
		if !e.Time.IsZero() && e.Time.Before(cut) {
			t.Errorf("event at %v survived the purge before %v", e.Time, cut)
		}
	}
	if got[len(got)-1].ID != untimed.ID {
		t.Error("the event without a time was purged")
	}
	if n, err := s.PurgeAudit(ctx, time.Time{}, 10); n != 0 || err != nil {
		t.Errorf("PurgeAudit(zero time) = %d, %v; want 0, nil", n, errors.Unwrap(err))
	}
}
