package conformance

import (
	"fmt"
	"slices"
	"strings"
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
		{"until (exclusive)", storage.AuditFilter{Until: all[2].Time}, newestFirst(all[:2])},
		{"since+until", storage.AuditFilter{Since: all[3].Time, Until: all[6].Time}, newestFirst(all[3:6])},
		{"action", storage.AuditFilter{Action: "action-4"}, []storage.AuditEvent{all[4]}},
		{"actor", storage.AuditFilter{Actor: all[5].Actor}, []storage.AuditEvent{all[5]}},
		{"target", storage.AuditFilter{Target: all[7].Target}, []storage.AuditEvent{all[7]}},
		{"request id", storage.AuditFilter{RequestID: all[1].RequestID}, []storage.AuditEvent{all[1]}},
		{"outcome", storage.AuditFilter{Outcome: "ok"}, newestFirst(all)},
		{"unknown outcome", storage.AuditFilter{Outcome: "failure"}, nil},
		{"action of another org", storage.AuditFilter{OrgID: orgB.ID, Action: "action-4"}, nil},
		// Filter values are data, never SQL: quotes and LIKE wildcards
		// match only themselves.
		{"wildcard actor", storage.AuditFilter{Actor: "%"}, nil},
		{"quoted action", storage.AuditFilter{Action: "' OR '1'='1"}, nil},
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

// auditOrder sorts events as ListAudit must: Time descending (a zero Time
// last), then ID descending.
func auditOrder(es []storage.AuditEvent) []storage.AuditEvent {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b storage.AuditEvent) int {
		switch {
		case a.Time.IsZero() != b.Time.IsZero():
			if a.Time.IsZero() {
				return 1
			}
			return -1
		case !a.Time.Equal(b.Time):
			return b.Time.Compare(a.Time)
		}
		return strings.Compare(b.ID, a.ID)
	})
	return es
}

// testAuditPaging pages through events that share timestamps, and events
// without a time, with every page size from 1 to 4 and with filters: the
// pages, continued from the last event of each, add up to the unpaged list
// with nothing repeated or skipped, even when events newer than the first
// page are appended midway.
func testAuditPaging(t *testing.T, s storage.Store) {
	ctx := t.Context()
	orgA, orgB := newOrg(t, s), newOrg(t, s)
	t0 := now()
	var all []storage.AuditEvent
	for i := range 13 {
		org := orgA.ID
		if i%3 == 2 {
			org = orgB.ID
		}
		// Groups of three share a timestamp, so the ID breaks the ties.
		e := auditRecord(org, t0.Add(-time.Duration(i/3)*time.Minute))
		e.Action = fmt.Sprintf("action-%d", i%2)
		all = append(all, e)
	}
	// Two events without a time: the oldest of all.
	for range 2 {
		e := auditRecord(orgA.ID, time.Time{})
		e.Action = "action-0"
		all = append(all, e)
	}
	mustNil(t, "AppendAudit", s.AppendAudit(ctx, all...))

	filters := []struct {
		name string
		f    storage.AuditFilter
		keep func(storage.AuditEvent) bool
	}{
		{"all", storage.AuditFilter{}, func(storage.AuditEvent) bool { return true }},
		{"org", storage.AuditFilter{OrgID: orgA.ID}, func(e storage.AuditEvent) bool { return e.OrgID == orgA.ID }},
		{"action", storage.AuditFilter{Action: "action-0"}, func(e storage.AuditEvent) bool { return e.Action == "action-0" }},
		{"time range", storage.AuditFilter{Since: t0.Add(-3 * time.Minute), Until: t0}, func(e storage.AuditEvent) bool {
			return !e.Time.IsZero() && !e.Time.Before(t0.Add(-3*time.Minute)) && e.Time.Before(t0)
		}},
	}
	for _, fc := range filters {
		var want []storage.AuditEvent
		for _, e := range all {
			if fc.keep(e) {
				want = append(want, e)
			}
		}
		want = auditOrder(want)
		unpaged, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: fc.f.OrgID, Action: fc.f.Action, Since: fc.f.Since, Until: fc.f.Until, Limit: 1000})
		mustNil(t, "ListAudit("+fc.name+")", err)
		diff(t, "ListAudit("+fc.name+") (time then ID, descending; no time last)", want, unpaged)
		for size := 1; size <= 4; size++ {
			f := fc.f
			f.Limit = size
			var got []storage.AuditEvent
			for page := 0; ; page++ {
				if page > len(all) {
					t.Fatalf("%s, page size %d: more pages than events", fc.name, size)
				}
				evs, err := s.ListAudit(ctx, f)
				mustNil(t, "ListAudit page", err)
				if len(evs) > size {
					t.Fatalf("%s: page of %d events, limit %d", fc.name, len(evs), size)
				}
				got = append(got, evs...)
				if len(evs) < size {
					break
				}
				last := evs[len(evs)-1]
				f.After = &storage.AuditPosition{Time: last.Time, ID: last.ID}
			}
			diff(t, fmt.Sprintf("%s in pages of %d", fc.name, size), want, got)
		}
	}

	// An event appended after the first page is newer than the position:
	// the listing continues where it was, without it and without a gap.
	first, err := s.ListAudit(ctx, storage.AuditFilter{Limit: 2})
	mustNil(t, "ListAudit first page", err)
	mustNil(t, "AppendAudit newer", s.AppendAudit(ctx, auditRecord(orgA.ID, t0.Add(time.Hour))))
	last := first[len(first)-1]
	rest, err := s.ListAudit(ctx, storage.AuditFilter{After: &storage.AuditPosition{Time: last.Time, ID: last.ID}, Limit: 1000})
	mustNil(t, "ListAudit rest", err)
	diff(t, "first page + rest after a newer append", auditOrder(all), append(first, rest...))
}

func testReplayRejectsReuse(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	id := "https://issuer.example.com#" + storage.NewID()

	used := func(what, id string, want bool) {
		t.Helper()
		got, err := s.Used(ctx, id, now())
		mustNil(t, what, err)
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	used("Used (before MarkUsed)", id, false)
	mustNil(t, "MarkUsed (first)", s.MarkUsed(ctx, id, now(), t0.Add(time.Hour)))
	used("Used (after MarkUsed)", id, true)
	used("Used (different id)", id+"y", false)
	wantErrIs(t, "MarkUsed (replay)", s.MarkUsed(ctx, id, now(), t0.Add(time.Hour)), storage.ErrAlreadyExists)
	wantErrIs(t, "MarkUsed (replay, later exp)", s.MarkUsed(ctx, id, now(), t0.Add(2*time.Hour)), storage.ErrAlreadyExists)
	mustNil(t, "MarkUsed (different id)", s.MarkUsed(ctx, id+"x", now(), t0.Add(time.Hour)))
	// The same jti from another issuer is a different id.
	mustNil(t, "MarkUsed (same jti, other issuer)", s.MarkUsed(ctx, "https://other.example.com#"+id[len("https://issuer.example.com#"):], now(), t0.Add(time.Hour)))

	// An expired but not yet collected id still fails closed.
	old := storage.NewID()
	mustNil(t, "MarkUsed (already expired)", s.MarkUsed(ctx, old, now(), t0.Add(-time.Hour)))
	wantErrIs(t, "MarkUsed (replay of an expired, uncollected id)", s.MarkUsed(ctx, old, now(), t0.Add(time.Hour)), storage.ErrAlreadyExists)
}
