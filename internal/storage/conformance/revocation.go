package conformance

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func testIssuedTokenRevocation(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()

	// A subject revocation round-trips every field.
	r := revocationRecord(t0, t0.Add(2*time.Hour))
	mustNil(t, "PutRevocation", s.PutRevocation(ctx, r))
	got, err := s.GetRevocation(ctx, r.ID)
	mustNil(t, "GetRevocation", err)
	diff(t, "GetRevocation", r, got)

	// A single-token revocation has a zero IssuedBefore.
	single := revocationRecord(time.Time{}, t0.Add(time.Hour))
	single.ID = "jti:" + storage.NewID()
	mustNil(t, "PutRevocation(jti)", s.PutRevocation(ctx, single))
	got, err = s.GetRevocation(ctx, single.ID)
	mustNil(t, "GetRevocation(jti)", err)
	diff(t, "GetRevocation(jti)", single, got)
	if !got.IssuedBefore.IsZero() {
		t.Errorf("GetRevocation(jti).IssuedBefore = %v, want zero", got.IssuedBefore)
	}

	// Each put keeps the later IssuedBefore and the later ExpiresAt of the
	// stored and the new revocation, field by field.
	steps := []struct {
		name                   string
		issuedBefore, expires  time.Time
		wantIssued, wantExpire time.Time
	}{
		{"later IssuedBefore, earlier ExpiresAt", t0.Add(time.Minute), t0.Add(time.Hour), t0.Add(time.Minute), t0.Add(2 * time.Hour)},
		{"earlier IssuedBefore, later ExpiresAt", t0.Add(-time.Hour), t0.Add(3 * time.Hour), t0.Add(time.Minute), t0.Add(3 * time.Hour)},
		{"both earlier (revoking twice is harmless)", t0, t0.Add(time.Hour), t0.Add(time.Minute), t0.Add(3 * time.Hour)},
		{"zero IssuedBefore never clears it", time.Time{}, t0.Add(3 * time.Hour), t0.Add(time.Minute), t0.Add(3 * time.Hour)},
		{"both later", t0.Add(2 * time.Minute), t0.Add(4 * time.Hour), t0.Add(2 * time.Minute), t0.Add(4 * time.Hour)},
	}
	for _, st := range steps {
		again := r
		again.IssuedBefore, again.ExpiresAt = st.issuedBefore, st.expires
		again.Reason = "again"
		mustNil(t, "PutRevocation("+st.name+")", s.PutRevocation(ctx, again))
		got, err := s.GetRevocation(ctx, r.ID)
		mustNil(t, "GetRevocation", err)
		if !got.IssuedBefore.Equal(st.wantIssued) || !got.ExpiresAt.Equal(st.wantExpire) {
			t.Errorf("after PutRevocation(%s): (IssuedBefore, ExpiresAt) = (%v, %v), want (%v, %v)",
				st.name, got.IssuedBefore, got.ExpiresAt, st.wantIssued, st.wantExpire)
		}
	}

	// The other revocation is untouched.
	got, err = s.GetRevocation(ctx, single.ID)
	mustNil(t, "GetRevocation(jti)", err)
	diff(t, "untouched revocation", single, got)

	_, err = s.GetRevocation(ctx, "sub:"+storage.NewID())
	wantErrIs(t, "GetRevocation(missing)", err, storage.ErrNotFound)

	// GetRevocations finds the rows among its IDs in one call, leaves out
	// the missing ones, and is empty (not an error) when none exist.
	byID := func(rs []storage.Revocation) []storage.Revocation {
		return slices.SortedFunc(slices.Values(rs), func(a, b storage.Revocation) int { return cmp.Compare(a.ID, b.ID) })
	}
	want, err := s.GetRevocation(ctx, r.ID)
	mustNil(t, "GetRevocation", err)
	missing := "jti:" + storage.NewID()
	for _, tc := range []struct {
		name string
		ids  []string
		want []storage.Revocation
	}{
		{"both", []string{single.ID, r.ID}, byID([]storage.Revocation{single, want})},
		{"one found", []string{missing, r.ID}, []storage.Revocation{want}},
		{"one ID", []string{single.ID}, []storage.Revocation{single}},
		{"three IDs", []string{single.ID, missing, r.ID}, byID([]storage.Revocation{single, want})},
		{"none found", []string{missing, "sub:" + storage.NewID()}, nil},
		{"no IDs", nil, nil},
	} {
		got, err := s.GetRevocations(ctx, tc.ids...)
		mustNil(t, "GetRevocations("+tc.name+")", err)
		if len(got) != len(tc.want) {
			t.Errorf("GetRevocations(%s) = %d rows, want %d", tc.name, len(got), len(tc.want))
			continue
		}
		if len(got) > 0 {
			diff(t, "GetRevocations("+tc.name+")", tc.want, byID(got))
		}
	}
}

func testListRevocationsSince(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	mk := func(created time.Time) storage.Revocation {
		r := revocationRecord(created.Add(-time.Minute), t0.Add(time.Hour))
		r.CreatedAt = created
		mustNil(t, "PutRevocation", s.PutRevocation(ctx, r))
		return r
	}
	// Put out of order; two share a CreatedAt so ID breaks the tie.
	r3 := mk(t0.Add(-1 * time.Hour))
	r1 := mk(t0.Add(-3 * time.Hour))
	r2a := mk(t0.Add(-2 * time.Hour))
	r2b := mk(t0.Add(-2 * time.Hour))
	all := []storage.Revocation{r1, r2a, r2b, r3}
	slices.SortFunc(all, func(a, b storage.Revocation) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})

	cases := []struct {
		name  string
		since time.Time
		want  []storage.Revocation
	}{
		{"zero since lists all", time.Time{}, all},
		{"since before the first", t0.Add(-4 * time.Hour), all},
		{"since equal to a CreatedAt is inclusive", t0.Add(-2 * time.Hour), all[1:]},
		{"since between two", t0.Add(-90 * time.Minute), all[3:]},
		{"since after the last", t0, nil},
	}
	for _, tc := range cases {
		got, err := s.ListRevocations(ctx, tc.since)
		mustNil(t, "ListRevocations("+tc.name+")", err)
		diff(t, "ListRevocations("+tc.name+") (ordered by CreatedAt, then ID)", tc.want, got)
	}
}
