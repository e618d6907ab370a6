package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testLockOwners: Tx.LockOrganization and Tx.LockPrincipal return the row
// as it is, ErrNotFound for one that is not there, and change nothing;
// two units of work may hold the same row at once. DeleteOrganization
// refuses an organization that still holds a principal (ErrNotEmpty).
func testLockOwners(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	p := newPrincipal(t, s, o.ID)
	mustNil(t, "WithTx(lock)", s.WithTx(ctx, func(tx storage.Tx) error {
		got, err := tx.LockOrganization(ctx, o.ID)
		mustNil(t, "LockOrganization", err)
		if got.ID != o.ID || got.Name != o.Name {
			t.Errorf("LockOrganization = %+v, want %+v", got, o)
		}
		gp, err := tx.LockPrincipal(ctx, p.ID)
		mustNil(t, "LockPrincipal", err)
		if gp.ID != p.ID || gp.OrgID != o.ID || gp.Disabled != p.Disabled {
			t.Errorf("LockPrincipal = %+v, want %+v", gp, p)
		}
		_, err = tx.LockPrincipal(ctx, storage.NewID())
		wantErrIs(t, "LockPrincipal(unknown)", err, storage.ErrNotFound)
		_, err = tx.LockOrganization(ctx, storage.NewID())
		wantErrIs(t, "LockOrganization(unknown)", err, storage.ErrNotFound)
		_, err = tx.LockPrincipal(ctx, "a\x00b")
		wantErrIs(t, "LockPrincipal(NUL)", err, storage.ErrNotFound)
		return nil
	}))
	after, err := s.GetPrincipal(ctx, p.ID)
	mustNil(t, "GetPrincipal", err)
	if !after.UpdatedAt.Equal(p.UpdatedAt) {
		t.Errorf("LockPrincipal changed the row: updated_at %v, was %v", after.UpdatedAt, p.UpdatedAt)
	}
	wantErrIs(t, "DeleteOrganization(holding a principal)", s.DeleteOrganization(ctx, o.ID), storage.ErrNotEmpty)
	wantErrIs(t, "WithTx(DeleteOrganization(holding a principal))",
		s.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteOrganization(ctx, o.ID) }), storage.ErrNotEmpty)
	_, err = s.GetOrganization(ctx, o.ID)
	mustNil(t, "GetOrganization after a refused delete", err)
	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, p.ID))
	mustNil(t, "DeleteOrganization(empty)", s.DeleteOrganization(ctx, o.ID))
}

// lockSettle is how long a deletion that does not wait for a lock has to
// finish: a fresh connection to a busy PostgreSQL takes a few hundred
// milliseconds.
const lockSettle = time.Second

// testLockHoldsOwnerAgainstDeletion: a unit of work that holds a principal
// with LockPrincipal keeps a concurrent delete of it waiting until it
// commits, so the deletion comes after what it wrote.
func testLockHoldsOwnerAgainstDeletion(t *testing.T, s storage.Store) {
	ctx := t.Context()
	owner := newTokenOwner(t, s)
	id := owner.principal.ID
	deleted := make(chan error, 1)
	mustNil(t, "WithTx(lock, create)", s.WithTx(ctx, func(tx storage.Tx) error {
		if _, err := tx.LockPrincipal(ctx, id); err != nil {
			return err
		}
		go func() { deleted <- s.DeletePrincipal(context.WithoutCancel(ctx), id) }()
		select { // a deletion that does not wait is done within lockSettle
		case err := <-deleted:
			t.Errorf("DeletePrincipal = %v while a unit of work held the principal", err)
			deleted <- nil
		case <-time.After(lockSettle):
		}
		return tx.CreatePAT(ctx, patRecord(owner.org.ID, id))
	}))
	mustNil(t, "DeletePrincipal after the holder committed", <-deleted)
}

// testDeleteOrganizationRacingCreate: a principal created under
// LockOrganization while DeleteOrganization runs either commits first
// and the deletion is refused (ErrNotEmpty), or finds the organization
// gone (ErrNotFound): never a principal in a deleted organization.
func testDeleteOrganizationRacingCreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	p := principalRecord(o.ID)
	deleted := make(chan error, 1)
	created := s.WithTx(ctx, func(tx storage.Tx) error {
		if _, err := tx.LockOrganization(ctx, o.ID); err != nil {
			return err
		}
		go func() { deleted <- s.DeleteOrganization(context.WithoutCancel(ctx), o.ID) }()
		time.Sleep(lockSettle) // a deletion that does not wait is done by now
		return tx.CreatePrincipal(ctx, p)
	})
	derr := <-deleted
	_, gerr := s.GetOrganization(ctx, o.ID)
	switch {
	case created == nil && !errors.Is(derr, storage.ErrNotEmpty):
		t.Errorf("DeleteOrganization racing a locked create = %v, want ErrNotEmpty", derr)
	case created == nil && gerr != nil:
		t.Errorf("principal %s committed in organization %s, which is gone (%v)", p.ID, o.ID, gerr)
	case created != nil && !errors.Is(created, storage.ErrNotFound):
		t.Errorf("create racing DeleteOrganization = %v, want nil or ErrNotFound", created)
	}
}
