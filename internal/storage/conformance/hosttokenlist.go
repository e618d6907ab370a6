package conformance

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func testHostTokenList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	other := newTokenOwner(t, s)
	r1, r2 := newRunner(t, s, o.org.ID), newRunner(t, s, o.org.ID)
	list := func(what string, f storage.HostTokenFilter) []storage.HostToken {
		t.Helper()
		got, err := s.ListHostTokens(ctx, f)
		mustNil(t, what, err)
		return got
	}
	if got := list("ListHostTokens({}) on a fresh store", storage.HostTokenFilter{}); len(got) != 0 {
		t.Fatalf("ListHostTokens({}) on a fresh store = %d rows, want 0", len(got))
	}

	var of1, all, ofOrg, subj []storage.HostToken
	for i := range 5 {
		owner, runner := o, r1
		switch i {
		case 2:
			runner = r2
		case 4:
			owner, runner = other, newRunner(t, s, other.org.ID)
		}
		ht := owner.hostToken(runner.ID, now().Add(time.Hour))
		if i == 3 {
			ht.SubjectID = r2.ID // a token whose subject is runner 2
		}
		mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
		all = append(all, ht)
		if runner.ID == r1.ID {
			of1 = append(of1, ht)
		}
		if owner.org.ID == o.org.ID {
			ofOrg = append(ofOrg, ht)
		}
		if ht.SubjectID == o.principal.ID {
			subj = append(subj, ht)
		}
	}
	byID := func(a, b storage.HostToken) int { return cmp.Compare(a.ID, b.ID) }
	for _, l := range [][]storage.HostToken{of1, all, ofOrg, subj} {
		slices.SortFunc(l, byID)
	}
	diff(t, "ListHostTokens(runner) (only that runner's, ordered by ID)", of1, list("ListHostTokens(runner)", storage.HostTokenFilter{RunnerID: r1.ID}))
	diff(t, "ListHostTokens({}) (every row, ordered by ID)", all, list("ListHostTokens({})", storage.HostTokenFilter{}))
	diff(t, "ListHostTokens(org)", ofOrg, list("ListHostTokens(org)", storage.HostTokenFilter{OrgID: o.org.ID}))
	diff(t, "ListHostTokens(org, subject)", subj, list("ListHostTokens(org, subject)",
		storage.HostTokenFilter{OrgID: o.org.ID, SubjectID: o.principal.ID}))
	// Principal matches either column: runner 2 is the runner of one row
	// and the subject of another.
	var ofR2 []storage.HostToken
	for _, ht := range ofOrg {
		if ht.RunnerID == r2.ID || ht.SubjectID == r2.ID {
			ofR2 = append(ofR2, ht)
		}
	}
	diff(t, "ListHostTokens(principal)", ofR2, list("ListHostTokens(principal)", storage.HostTokenFilter{OrgID: o.org.ID, Principal: r2.ID}))
	if len(ofR2) != 2 {
		t.Fatalf("test setup: runner 2 should be on 2 rows, is on %d", len(ofR2))
	}
	// Keyset pagination: pages of two, in ID order, with nothing skipped.
	var paged []storage.HostToken
	for after := ""; ; {
		page := list("ListHostTokens(page)", storage.HostTokenFilter{OrgID: o.org.ID, AfterID: after, Limit: 2})
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	diff(t, "ListHostTokens paged", ofOrg, paged)
	if got := list("ListHostTokens(unknown runner)", storage.HostTokenFilter{RunnerID: storage.NewID()}); len(got) != 0 {
		t.Errorf("ListHostTokens(unknown runner) = %d rows, want 0", len(got))
	}
}

// testHostTokenRefreshable checks the refresher's query: OAuth rows with a
// refresh token, a listed integration and an expiry before the cut-off,
// whose lease has ended and whose subject and runner are enabled principals
// of its organization, soonest expiry first.
func testHostTokenRefreshable(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	enable := func(id string, enabled bool) {
		t.Helper()
		mustNil(t, "UpdatePrincipal", s.UpdatePrincipal(ctx, id, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = !enabled
			return p, nil
		}))
	}
	enable(o.principal.ID, true)
	r := newRunner(t, s, o.org.ID)
	disabledSubject, disabledRunner := newPrincipal(t, s, o.org.ID), newRunner(t, s, o.org.ID)
	enable(disabledRunner.ID, false)
	foreign := newRunner(t, s, newOrg(t, s).ID)
	t0 := now()
	integ := storage.NewID()
	mk := func(exp time.Time, mut func(*storage.HostToken)) storage.HostToken {
		ht := o.hostToken(r.ID, exp)
		ht.IntegrationID = integ
		if mut != nil {
			mut(&ht)
		}
		mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
		return ht
	}
	soon := mk(t0.Add(2*time.Minute), nil)
	expired := mk(t0.Add(-time.Minute), nil)
	leaseOver := mk(t0.Add(3*time.Minute), func(h *storage.HostToken) { h.RefreshLeaseID, h.RefreshLeaseUntil = "x", t0.Add(-time.Second) })
	mk(t0.Add(time.Minute), func(h *storage.HostToken) { h.RefreshLeaseID, h.RefreshLeaseUntil = "x", t0.Add(time.Minute) })
	mk(t0.Add(time.Minute), func(h *storage.HostToken) { h.Source = storage.HostTokenSourcePAT })
	mk(t0.Add(time.Minute), func(h *storage.HostToken) { h.SealedRefresh = nil })
	mk(t0.Add(time.Minute), func(h *storage.HostToken) { h.IntegrationID = storage.NewID() })
	mk(t0.Add(time.Hour), nil) // not due yet
	mk(time.Time{}, nil)       // never expires
	// Suspended owners (docs/security.md A-47), due before every token above.
	for _, own := range []func(*storage.HostToken){
		func(h *storage.HostToken) { h.SubjectID = disabledSubject.ID },
		func(h *storage.HostToken) { h.RunnerID = disabledRunner.ID },
		func(h *storage.HostToken) { h.SubjectID = storage.NewID() },
		func(h *storage.HostToken) { h.RunnerID = storage.NewID() },
		func(h *storage.HostToken) { h.RunnerID = foreign.ID },
	} {
		mk(t0.Add(-time.Hour), own)
	}
	got, err := s.ListRefreshableHostTokens(ctx, t0.Add(5*time.Minute), t0, []string{integ, storage.NewID()}, 10)
	mustNil(t, "ListRefreshableHostTokens", err)
	diff(t, "ListRefreshableHostTokens", []storage.HostToken{expired, soon, leaseOver}, got)
	got, err = s.ListRefreshableHostTokens(ctx, t0.Add(5*time.Minute), t0, []string{integ}, 1)
	mustNil(t, "ListRefreshableHostTokens(limit 1)", err)
	diff(t, "ListRefreshableHostTokens(limit 1)", []storage.HostToken{expired}, got)
	got, err = s.ListRefreshableHostTokens(ctx, t0.Add(5*time.Minute), t0, nil, 10)
	mustNil(t, "ListRefreshableHostTokens(no integrations)", err)
	if len(got) != 0 {
		t.Errorf("ListRefreshableHostTokens(no integrations) = %d rows, want 0", len(got))
	}
}
