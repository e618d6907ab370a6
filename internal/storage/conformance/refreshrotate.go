package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testRotateRefreshToken: the rotation of a refresh token and its
// successor are one unit (docs/security.md F-44): both or neither.
func testRotateRefreshToken(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()
	family := storage.NewID()
	parent := o.refreshToken(family, t0.Add(24*time.Hour))
	mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, parent))

	unchanged := func(what string) {
		t.Helper()
		got, err := s.GetRefreshToken(ctx, parent.ID)
		mustNil(t, "GetRefreshToken", err)
		diff(t, what+": parent", parent, got)
	}

	// The updater refuses: nothing changes, its error comes back as is.
	refused := errors.New("refused")
	succ := o.refreshToken(family, t0.Add(24*time.Hour))
	succ.CreatedAt = t0
	err := s.RotateRefreshToken(ctx, parent.ID, succ, func(old storage.RefreshToken) error {
		diff(t, "RotateRefreshToken updater's old row", parent, old)
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("RotateRefreshToken with a refusing updater = %v, want its error", err)
	}
	unchanged("after a refused rotation")
	_, err = s.GetRefreshToken(ctx, succ.ID)
	wantErrIs(t, "successor of a refused rotation", err, storage.ErrNotFound)

	// The successor cannot be stored (its digest is taken): the parent is
	// not rotated either.
	other := o.refreshToken(storage.NewID(), t0.Add(time.Hour))
	mustNil(t, "CreateRefreshToken(other)", s.CreateRefreshToken(ctx, other))
	clash := succ
	clash.Digest = other.Digest
	err = s.RotateRefreshToken(ctx, parent.ID, clash, func(storage.RefreshToken) error { return nil })
	wantErrIs(t, "RotateRefreshToken with a taken successor digest", err, storage.ErrAlreadyExists)
	unchanged("after a failed rotation")

	// Missing parent.
	err = s.RotateRefreshToken(ctx, storage.NewID(), succ, func(storage.RefreshToken) error { return nil })
	wantErrIs(t, "RotateRefreshToken(missing)", err, storage.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, succ.ID)
	wantErrIs(t, "successor of a missing parent", err, storage.ErrNotFound)

	// Success: both rows at once.
	mustNil(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, parent.ID, succ, func(storage.RefreshToken) error { return nil }))
	want := parent
	want.RotatedAt, want.SuccessorID = succ.CreatedAt, succ.ID
	got, err := s.GetRefreshToken(ctx, parent.ID)
	mustNil(t, "GetRefreshToken(parent)", err)
	diff(t, "rotated parent", want, got)
	got, err = s.GetRefreshToken(ctx, succ.ID)
	mustNil(t, "GetRefreshToken(successor)", err)
	diff(t, "successor", succ, got)
}
