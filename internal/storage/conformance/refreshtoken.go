package conformance

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func testRefreshTokenCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()
	family := storage.NewID()

	cur := o.refreshToken(family, t0.Add(24*time.Hour))
	minimal := o.refreshToken(storage.NewID(), t0.Add(time.Hour))
	minimal.Scopes, minimal.Audiences, minimal.Claims, minimal.Subject = nil, nil, nil, ""
	for _, rt := range []storage.RefreshToken{cur, minimal} {
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
		got, err := s.GetRefreshToken(ctx, rt.ID)
		mustNil(t, "GetRefreshToken", err)
		diff(t, "GetRefreshToken", rt, got)
		got, err = s.GetRefreshTokenByDigest(ctx, rt.Digest)
		mustNil(t, "GetRefreshTokenByDigest", err)
		diff(t, "GetRefreshTokenByDigest", rt, got)
	}

	// Rotate: the successor joins the family, the old token records it.
	succ := o.refreshToken(family, t0.Add(24*time.Hour))
	mustNil(t, "CreateRefreshToken(successor)", s.CreateRefreshToken(ctx, succ))
	rotated := cur
	rotated.RotatedAt = t0.Add(time.Second)
	rotated.SuccessorID = succ.ID
	rotated.Revoked = true
	rotated.ExpiresAt = t0.Add(time.Minute)
	rotated.UsedAt = t0.Add(2 * time.Second)
	err := s.UpdateRefreshToken(ctx, cur.ID, func(old storage.RefreshToken) (storage.RefreshToken, error) {
		diff(t, "UpdateRefreshToken updater's old row", cur, old)
		return rotated, nil
	})
	mustNil(t, "UpdateRefreshToken", err)
	got, err := s.GetRefreshToken(ctx, cur.ID)
	mustNil(t, "GetRefreshToken after rotation", err)
	diff(t, "GetRefreshToken after rotation", rotated, got)
	got, err = s.GetRefreshTokenByDigest(ctx, cur.Digest)
	mustNil(t, "GetRefreshTokenByDigest after rotation", err)
	diff(t, "GetRefreshTokenByDigest after rotation", rotated, got)
	got, err = s.GetRefreshToken(ctx, succ.ID)
	mustNil(t, "GetRefreshToken(successor)", err)
	diff(t, "successor after its predecessor's rotation", succ, got)

	_, err = s.GetRefreshToken(ctx, storage.NewID())
	wantErrIs(t, "GetRefreshToken(missing)", err, storage.ErrNotFound)
	_, err = s.GetRefreshTokenByDigest(ctx, randBytes(32))
	wantErrIs(t, "GetRefreshTokenByDigest(missing)", err, storage.ErrNotFound)
}

func testRevokeRefreshFamily(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	exp := now().Add(time.Hour)
	famA, famB := storage.NewID(), storage.NewID()

	var inA, inB []storage.RefreshToken
	for i := range 3 {
		rt := o.refreshToken(famA, exp)
		rt.Revoked = i == 0 // already revoked: marking it again changes nothing
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
		inA = append(inA, rt)
	}
	for range 2 {
		rt := o.refreshToken(famB, exp)
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
		inB = append(inB, rt)
	}

	n, err := s.RevokeRefreshFamily(ctx, famA)
	mustNil(t, "RevokeRefreshFamily", err)
	if n != 2 {
		t.Errorf("RevokeRefreshFamily(3 tokens, 1 already revoked) = %d, want 2 (rows changed)", n)
	}
	for _, rt := range inA {
		got, err := s.GetRefreshToken(ctx, rt.ID)
		mustNil(t, "GetRefreshToken", err)
		want := rt
		want.Revoked = true
		diff(t, "revoked family member", want, got)
	}
	for _, rt := range inB {
		got, err := s.GetRefreshToken(ctx, rt.ID)
		mustNil(t, "GetRefreshToken", err)
		diff(t, "member of another family", rt, got)
	}

	n, err = s.RevokeRefreshFamily(ctx, famA)
	mustNil(t, "RevokeRefreshFamily (again)", err)
	if n != 0 {
		t.Errorf("RevokeRefreshFamily(already revoked family) = %d, want 0", n)
	}
	n, err = s.RevokeRefreshFamily(ctx, storage.NewID())
	mustNil(t, "RevokeRefreshFamily(unknown family)", err)
	if n != 0 {
		t.Errorf("RevokeRefreshFamily(unknown family) = %d, want 0", n)
	}
	n, err = s.RevokeRefreshFamily(ctx, famB)
	mustNil(t, "RevokeRefreshFamily(B)", err)
	if n != 2 {
		t.Errorf("RevokeRefreshFamily(B) = %d, want 2", n)
	}
}

// testRevokeRefreshSubject: revoking a subject ends every refresh family
// of that subject begun at or before the cut-off, including members
// rotated in after it; families begun later, and other subjects'
// families, are untouched.
func testRevokeRefreshSubject(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()
	exp := t0.Add(time.Hour)
	subject := "sub-" + storage.NewID()
	mk := func(family, sub string, created time.Time) storage.RefreshToken {
		rt := o.refreshToken(family, exp)
		rt.Subject, rt.CreatedAt = sub, created
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
		return rt
	}
	old, newer, other := storage.NewID(), storage.NewID(), storage.NewID()
	oldFirst := mk(old, subject, t0.Add(-time.Hour))
	oldRotated := mk(old, subject, t0.Add(time.Minute)) // rotated in after the cut-off
	later := mk(newer, subject, t0.Add(time.Minute))
	stranger := mk(other, "sub-"+storage.NewID(), t0.Add(-time.Hour))

	n, err := s.RevokeRefreshSubject(ctx, subject, t0)
	mustNil(t, "RevokeRefreshSubject", err)
	if n != 2 {
		t.Errorf("RevokeRefreshSubject = %d, want 2 (both members of the family begun before the cut-off)", n)
	}
	for _, tc := range []struct {
		rt      storage.RefreshToken
		revoked bool
	}{{oldFirst, true}, {oldRotated, true}, {later, false}, {stranger, false}} {
		got, err := s.GetRefreshToken(ctx, tc.rt.ID)
		mustNil(t, "GetRefreshToken", err)
		want := tc.rt
		want.Revoked = tc.revoked
		diff(t, "after RevokeRefreshSubject", want, got)
	}
	n, err = s.RevokeRefreshSubject(ctx, subject, t0)
	mustNil(t, "RevokeRefreshSubject (again)", err)
	if n != 0 {
		t.Errorf("RevokeRefreshSubject (again) = %d, want 0", n)
	}
	n, err = s.RevokeRefreshSubject(ctx, "sub-"+storage.NewID(), t0)
	mustNil(t, "RevokeRefreshSubject(unknown subject)", err)
	if n != 0 {
		t.Errorf("RevokeRefreshSubject(unknown subject) = %d, want 0", n)
	}
}
