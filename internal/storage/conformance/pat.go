package conformance

import (
	"bytes"
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func sortPATs(ps []storage.PAT) []storage.PAT {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b storage.PAT) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return ps
}

func testPATCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	ownerA, ownerB := newPrincipal(t, s, o.ID), newPrincipal(t, s, o.ID)

	list, err := s.ListPATs(ctx, ownerA.ID)
	mustNil(t, "ListPATs on a fresh store", err)
	if len(list) != 0 {
		t.Fatalf("ListPATs on a fresh store = %d rows, want 0", len(list))
	}

	t0 := now()
	var ofA []storage.PAT
	// CreatedAt order differs from insertion order; two share a CreatedAt.
	for _, created := range []time.Time{t0.Add(-time.Hour), t0.Add(-3 * time.Hour), t0.Add(-2 * time.Hour), t0.Add(-2 * time.Hour)} {
		p := patRecord(o.ID, ownerA.ID)
		p.CreatedAt = created
		mustNil(t, "CreatePAT", s.CreatePAT(ctx, p))
		ofA = append(ofA, p)
	}
	// A never-used token with no scopes.
	unused := patRecord(o.ID, ownerA.ID)
	unused.LastUsedAt, unused.Scopes = time.Time{}, nil
	mustNil(t, "CreatePAT(unused)", s.CreatePAT(ctx, unused))
	ofA = append(ofA, unused)
	ofB := patRecord(o.ID, ownerB.ID)
	mustNil(t, "CreatePAT(owner B)", s.CreatePAT(ctx, ofB))

	for _, p := range append(slices.Clone(ofA), ofB) {
		got, err := s.GetPAT(ctx, p.ID)
		mustNil(t, "GetPAT", err)
		diff(t, "GetPAT", p, got)
	}
	list, err = s.ListPATs(ctx, ownerA.ID)
	mustNil(t, "ListPATs(owner A)", err)
	diff(t, "ListPATs(owner A) (only A's, ordered by CreatedAt, then ID)", sortPATs(ofA), list)
	list, err = s.ListPATs(ctx, ownerB.ID)
	mustNil(t, "ListPATs(owner B)", err)
	diff(t, "ListPATs(owner B)", []storage.PAT{ofB}, list)

	target := ofA[0]
	upd := target
	upd.Description = odd("renamed")
	upd.Scopes = []string{"pat:read"}
	upd.LastUsedAt = t0.Add(time.Second)
	upd.ExpiresAt = t0.Add(time.Hour)
	err = s.UpdatePAT(ctx, target.ID, func(old storage.PAT) (storage.PAT, error) {
		diff(t, "UpdatePAT updater's old row", target, old)
		return upd, nil
	})
	mustNil(t, "UpdatePAT", err)
	got, err := s.GetPAT(ctx, target.ID)
	mustNil(t, "GetPAT after update", err)
	diff(t, "GetPAT after update", upd, got)

	mustNil(t, "DeletePAT", s.DeletePAT(ctx, target.ID))
	_, err = s.GetPAT(ctx, target.ID)
	wantErrIs(t, "GetPAT after delete", err, storage.ErrNotFound)
	_, err = s.GetPATByDigest(ctx, target.Digest)
	wantErrIs(t, "GetPATByDigest after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeletePAT twice", s.DeletePAT(ctx, target.ID), storage.ErrNotFound)
	list, err = s.ListPATs(ctx, ownerA.ID)
	mustNil(t, "ListPATs after delete", err)
	diff(t, "ListPATs after delete", sortPATs(ofA[1:]), list)
}

func testPATLookupByDigest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newPAT(t, s)
	b := patRecord(a.OrgID, a.OwnerID)
	// b's digest differs from a's only in the last byte.
	b.Digest = bytes.Clone(a.Digest)
	b.Digest[len(b.Digest)-1] ^= 0xff
	mustNil(t, "CreatePAT", s.CreatePAT(ctx, b))

	for _, p := range []storage.PAT{a, b} {
		got, err := s.GetPATByDigest(ctx, p.Digest)
		mustNil(t, "GetPATByDigest", err)
		diff(t, "GetPATByDigest", p, got)
	}
	for name, d := range map[string][]byte{
		"unknown":  randBytes(32),
		"prefix":   a.Digest[:16],
		"extended": append(bytes.Clone(a.Digest), 0),
		"empty":    {},
		"nil":      nil,
	} {
		_, err := s.GetPATByDigest(ctx, d)
		wantErrIs(t, "GetPATByDigest("+name+" digest)", err, storage.ErrNotFound)
	}

	// A second token with a taken digest is refused.
	c := patRecord(a.OrgID, a.OwnerID)
	c.Digest = bytes.Clone(a.Digest)
	wantErrIs(t, "CreatePAT(taken digest)", s.CreatePAT(ctx, c), storage.ErrAlreadyExists)
	_, err := s.GetPAT(ctx, c.ID)
	wantErrIs(t, "GetPAT of a refused PAT", err, storage.ErrNotFound)

	// Moving b onto a's digest is refused and leaves b unchanged.
	err = s.UpdatePAT(ctx, b.ID, func(old storage.PAT) (storage.PAT, error) {
		old.Digest = bytes.Clone(a.Digest)
		old.Description = "stolen digest"
		return old, nil
	})
	wantErrIs(t, "UpdatePAT(another token's digest)", err, storage.ErrAlreadyExists)
	got, err := s.GetPAT(ctx, b.ID)
	mustNil(t, "GetPAT", err)
	diff(t, "PAT after a refused digest change", b, got)
	got, err = s.GetPATByDigest(ctx, a.Digest)
	mustNil(t, "GetPATByDigest", err)
	diff(t, "owner of the contested digest", a, got)

	// Rotating to a fresh digest moves the lookup.
	rotated := randBytes(32)
	err = s.UpdatePAT(ctx, b.ID, func(old storage.PAT) (storage.PAT, error) {
		old.Digest = rotated
		return old, nil
	})
	mustNil(t, "UpdatePAT(fresh digest)", err)
	got, err = s.GetPATByDigest(ctx, rotated)
	mustNil(t, "GetPATByDigest(rotated)", err)
	if got.ID != b.ID {
		t.Errorf("GetPATByDigest(rotated).ID = %q, want %q", got.ID, b.ID)
	}
	_, err = s.GetPATByDigest(ctx, b.Digest)
	wantErrIs(t, "GetPATByDigest(old digest after rotation)", err, storage.ErrNotFound)
	// Keeping its own digest is not a conflict.
	err = s.UpdatePAT(ctx, a.ID, func(old storage.PAT) (storage.PAT, error) {
		old.Description = "same digest"
		return old, nil
	})
	mustNil(t, "UpdatePAT(own digest)", err)
}
