package audit_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
)

// appendEvents stores n events a second apart, newest last, alternating
// two actions.
func appendEvents(t *testing.T, s storage.AuditStore, n int) []storage.AuditEvent {
	t.Helper()
	t0 := storage.Now(time.Now())
	evs := make([]storage.AuditEvent, n)
	for i := range evs {
		evs[i] = storage.AuditEvent{ID: storage.NewID(), Time: t0.Add(time.Duration(i-n) * time.Second), OrgID: "acme",
			Actor: "principal:p", Action: fmt.Sprintf("thing.%d", i%2), Target: fmt.Sprintf("thing:%d", i), Outcome: "success"}
	}
	if err := s.AppendAudit(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestListPages: following NextPageToken visits every matching event once,
// newest first, and the last page has no token.
func TestListPages(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	evs := appendEvents(t, store, 7)
	for _, tc := range []struct {
		name string
		q    audit.Query
		want []string // targets, newest first
	}{
		{"all", audit.Query{PageSize: 2}, []string{"thing:6", "thing:5", "thing:4", "thing:3", "thing:2", "thing:1", "thing:0"}},
		{"action", audit.Query{Action: "thing.0", PageSize: 2}, []string{"thing:6", "thing:4", "thing:2", "thing:0"}},
		{"range", audit.Query{Since: evs[1].Time, Until: evs[4].Time, PageSize: 1}, []string{"thing:3", "thing:2", "thing:1"}},
		{"exact page", audit.Query{Action: "thing.1", PageSize: 3}, []string{"thing:5", "thing:3", "thing:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			q := tc.q
			for pages := 0; ; pages++ {
				if pages > len(evs) {
					t.Fatal("more pages than events")
				}
				p, err := audit.List(t.Context(), store, q)
				if err != nil {
					t.Fatalf("List(%+v) = %v", q, err)
				}
				if len(p.Events) > q.PageSize {
					t.Fatalf("page of %d events, page size %d", len(p.Events), q.PageSize)
				}
				for _, e := range p.Events {
					got = append(got, e.Target)
				}
				if p.NextPageToken == "" {
					break
				}
				if len(p.Events) != q.PageSize {
					t.Errorf("a page of %d events with a next token; want full pages until the last", len(p.Events))
				}
				q.PageToken = p.NextPageToken
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("pages = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestListRefusesBadQueries: each bad query is a QueryError naming the
// field.
func TestListRefusesBadQueries(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	appendEvents(t, store, 3)
	first, err := audit.List(t.Context(), store, audit.Query{PageSize: 1})
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("List = %+v, %v", first, err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name  string
		q     audit.Query
		field string
	}{
		{"negative page size", audit.Query{PageSize: -1}, "page_size"},
		{"until before since", audit.Query{Since: now, Until: now.Add(-time.Second)}, "until"},
		{"until equals since", audit.Query{Since: now, Until: now}, "until"},
		{"long actor", audit.Query{Actor: strings.Repeat("a", 513)}, "actor"},
		{"garbage token", audit.Query{PageToken: "not a token!"}, "page_token"},
		{"json but not a token", audit.Query{PageToken: "e30"}, "page_token"}, // {}
		{"huge token", audit.Query{PageToken: strings.Repeat("A", 1000)}, "page_token"},
		{"token of other filters", audit.Query{PageSize: 1, Action: "thing.0", PageToken: first.NextPageToken}, "page_token"},
	} {
		_, err := audit.List(t.Context(), store, tc.q)
		var qe *audit.QueryError
		if !errors.As(err, &qe) || qe.Field != tc.field {
			t.Errorf("%s: List = %v, want a QueryError for %s", tc.name, err, tc.field)
		}
	}
	// The page size is capped, not refused.
	p, err := audit.List(t.Context(), store, audit.Query{PageSize: 1 << 20})
	if err != nil || len(p.Events) != 3 || p.NextPageToken != "" {
		t.Errorf("List(huge page size) = %d events, %q, %v", len(p.Events), p.NextPageToken, err)
	}
}

// TestListTargetMatchesOldSpelling: a target filter in today's kind:id form
// finds the events written before it with the old spellings (a bare PAT
// ID, pool/<id>, provider/<pool>/<id>, a token exchange's bare <pool> and
// <pool>/<provider>), and no other event (docs/operations.md "Audit
// targets").
func TestListTargetMatchesOldSpelling(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	t0 := storage.Now(time.Now())
	add := func(action, target string) {
		t.Helper()
		t0 = t0.Add(time.Second)
		if err := store.AppendAudit(t.Context(), storage.AuditEvent{ID: storage.NewID(), Time: t0, OrgID: "acme",
			Actor: "cli", Action: action, Target: target, Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	const pat = "0190b2c4-6a2e-7c1d-9f3e-5d4c3b2a1f0e"
	add("pat.create", pat)
	add("pat.delete", "pat:"+pat)
	add("pool.create", "pool/ci")
	add("token.exchange", "ci")
	add("pool.update", "pool:ci")
	add("provider.create", "provider/ci/github")
	add("token.exchange", "ci/github")
	add("provider.update", "provider:ci/github")
	add("pool.create", "pool/cd")
	for target, want := range map[string]string{
		"pat:" + pat:         "pat.delete pat.create",
		"pool:ci":            "pool.update token.exchange pool.create",
		"provider:ci/github": "provider.update token.exchange provider.create",
		"client:x":           "",
	} {
		page, err := audit.List(t.Context(), store, audit.Query{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range page.Events {
			got = append(got, e.Action)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("target %q: %v, want %s", target, got, want)
		}
	}
}
