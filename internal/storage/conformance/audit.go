package conformance

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// newestFirst orders events as ListAudit must.
func newestFirst(es []storage.AuditEvent) []storage.AuditEvent {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b storage.AuditEvent) int { return b.Time.Compare(a.Time) })
	return es
}

func testAuditAppendList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	orgA, orgB := newOrg(t, s), newOrg(t, s)
	t0 := now()

	mustNil(t, "AppendAudit() with no events", s.AppendAudit(ctx))
	got, err := s.ListAudit(ctx, storage.AuditFilter{})
	mustNil(t, "ListAudit on a fresh store", err)
	if len(got) != 0 {
		t.Fatalf("ListAudit on a fresh store = %d events, want 0", len(got))
	}

	// Ten events a minute apart, alternating orgs, appended out of order
	// in two batches.
	var all []storage.AuditEvent
	for i := range 10 {
		org := orgA.ID
		if i%2 == 1 {
			org = orgB.ID
		}
		e := auditRecord(org, t0.Add(time.Duration(i-10)*time.Minute))
		e.Action = fmt.Sprintf("action-%d", i)
		all = append(all, e)
	}
	batch1 := []storage.AuditEvent{all[7], all[0], all[3], all[9], all[4]}
	batch2 := []storage.AuditEvent{all[2], all[8], all[1], all[6], all[5]}
	mustNil(t, "AppendAudit(batch 1)", s.AppendAudit(ctx, batch1...))
	mustNil(t, "AppendAudit(batch 2)", s.AppendAudit(ctx, batch2...))

	var ofA []storage.AuditEvent
	for _, e := range all {
		if e.OrgID == orgA.ID {
			ofA = append(ofA, e)
		}
	}
	sinceIdx := 6 // events 6..9 are after since
	since := all[sinceIdx].Time.Add(-30 * time.Second)

	cases := []struct {
		name string
		f    storage.AuditFilter
		want []storage.AuditEvent
	}{
		{"all", storage.AuditFilter{}, newestFirst(all)},
		{"org", storage.AuditFilter{OrgID: orgA.ID}, newestFirst(ofA)},
		{"since", storage.AuditFilter{Since: since}, newestFirst(all[sinceIdx:])},
		{"limit", storage.AuditFilter{Limit: 3}, newestFirst(all)[:3]},
		{"org+since+limit", storage.AuditFilter{OrgID: orgB.ID, Since: since, Limit: 1}, []storage.AuditEvent{all[9]}},
		{"org+since", storage.AuditFilter{OrgID: orgA.ID, Since: since}, []storage.AuditEvent{all[8], all[6]}},
		{"unknown org", storage.AuditFilter{OrgID: storage.NewID()}, nil},
		{"since after the last", storage.AuditFilter{Since: t0}, nil},
	}
	for _, tc := range cases {
		got, err := s.ListAudit(ctx, tc.f)
		mustNil(t, "ListAudit("+tc.name+")", err)
		diff(t, "ListAudit("+tc.name+") (newest first)", tc.want, got)
	}
}

func testAuditDefaultLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	org := newOrg(t, s)
	t0 := now()
	const n = 120
	events := make([]storage.AuditEvent, n)
	for i := range events {
		events[i] = auditRecord(org.ID, t0.Add(time.Duration(i-n)*time.Second))
	}
	mustNil(t, "AppendAudit(120 events)", s.AppendAudit(ctx, events...))
	want := newestFirst(events)

	for _, tc := range []struct {
		limit, want int
	}{{0, 100}, {-1, 100}, {150, n}, {101, 101}} {
		got, err := s.ListAudit(ctx, storage.AuditFilter{Limit: tc.limit})
		mustNil(t, "ListAudit", err)
		diff(t, fmt.Sprintf("ListAudit(Limit: %d) (newest %d)", tc.limit, tc.want), want[:tc.want], got)
	}
}

func testReplayRejectsReuse(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	id := "https://issuer.example.com#" + storage.NewID()

	mustNil(t, "MarkUsed (first)", s.MarkUsed(ctx, id, t0.Add(time.Hour)))
	wantErrIs(t, "MarkUsed (replay)", s.MarkUsed(ctx, id, t0.Add(time.Hour)), storage.ErrAlreadyExists)
	wantErrIs(t, "MarkUsed (replay, later exp)", s.MarkUsed(ctx, id, t0.Add(2*time.Hour)), storage.ErrAlreadyExists)
	mustNil(t, "MarkUsed (different id)", s.MarkUsed(ctx, id+"x", t0.Add(time.Hour)))
	// The same jti from another issuer is a different id.
	mustNil(t, "MarkUsed (same jti, other issuer)", s.MarkUsed(ctx, "https://other.example.com#"+id[len("https://issuer.example.com#"):], t0.Add(time.Hour)))

	// An expired but not yet collected id still fails closed.
	old := storage.NewID()
	mustNil(t, "MarkUsed (already expired)", s.MarkUsed(ctx, old, t0.Add(-time.Hour)))
	wantErrIs(t, "MarkUsed (replay of an expired, uncollected id)", s.MarkUsed(ctx, old, t0.Add(time.Hour)), storage.ErrAlreadyExists)
}
