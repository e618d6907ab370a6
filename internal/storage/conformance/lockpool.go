package conformance

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// lockHold is how long a unit of work holding a pool waits before it goes
// on, so that the other unit of work has reached the point the test is
// about (waiting for the lock, or past it).
const lockHold = 300 * time.Millisecond

// testLockPool: Tx.LockPool reads the pool and holds it until the unit of
// work ends, writing nothing (docs/security.md A-85). A change of the pool
// by another caller waits for it; a provider created in the pool by
// another unit of work (a foreign key's check) does not deadlock with it,
// and neither do two units of work that lock the pool and delete it.
func testLockPool(t *testing.T, s storage.Store) {
	ctx := t.Context()
	pool := newPool(t, s)

	// It reads the pool as stored; a missing pool is ErrNotFound.
	mustNil(t, "WithTx(LockPool)", s.WithTx(ctx, func(tx storage.Tx) error {
		got, err := tx.LockPool(ctx, pool.ID)
		mustNil(t, "LockPool", err)
		diff(t, "LockPool", pool, got)
		_, err = tx.LockPool(ctx, "missing-"+storage.NewID())
		wantErrIs(t, "LockPool(missing)", err, storage.ErrNotFound)
		return nil
	}))
	after, err := s.GetPool(ctx, pool.ID)
	mustNil(t, "GetPool", err)
	diff(t, "pool after LockPool (nothing written)", pool, after)

	// A change of the pool by another caller waits until the unit of
	// work holding it commits.
	t.Run("UpdateWaits", func(t *testing.T) {
		moved := make(chan error, 1)
		var waited bool
		mustNil(t, "WithTx(LockPool)", s.WithTx(ctx, func(tx storage.Tx) error {
			if _, err := tx.LockPool(ctx, pool.ID); err != nil {
				return err
			}
			go func() {
				moved <- s.UpdatePool(ctx, pool.ID, func(p storage.Pool) (storage.Pool, error) {
					p.DisplayName = "moved"
					return p, nil
				})
			}()
			select {
			case err := <-moved:
				t.Errorf("UpdatePool of a locked pool returned (%v) before the unit of work holding it ended", err)
			case <-time.After(lockHold):
				waited = true
			}
			return nil
		}))
		if waited {
			mustNil(t, "UpdatePool after the lock", <-moved)
		}
	})

	// A unit of work holding the pool and one creating the same provider
	// in it: one creates it, the other is ErrAlreadyExists (the holder
	// must not keep the other's foreign key check waiting while it waits
	// for the other's key: a deadlock).
	t.Run("ConcurrentCreateProvider", func(t *testing.T) {
		pr := providerRecord(pool.ID, "same-"+storage.NewID()[:8])
		other := make(chan error, 1)
		held := s.WithTx(ctx, func(tx storage.Tx) error {
			if _, err := tx.LockPool(ctx, pool.ID); err != nil {
				return err
			}
			go func() {
				other <- s.WithTx(ctx, func(tx storage.Tx) error { return tx.CreateProvider(ctx, pr) })
			}()
			time.Sleep(lockHold)
			return tx.CreateProvider(ctx, pr)
		})
		exactlyOneWinner(t, "CreateProvider(holding the pool) and CreateProvider(another unit of work)",
			[]error{held, <-other}, storage.ErrAlreadyExists)
	})

	// Two units of work that lock the pool and delete it: one deletes it,
	// the other then finds it gone.
	t.Run("ConcurrentLockAndDelete", func(t *testing.T) {
		p := newPool(t, s)
		other := make(chan error, 1)
		first := s.WithTx(ctx, func(tx storage.Tx) error {
			if _, err := tx.LockPool(ctx, p.ID); err != nil {
				return err
			}
			go func() {
				other <- s.WithTx(ctx, func(tx storage.Tx) error {
					if _, err := tx.LockPool(ctx, p.ID); err != nil {
						return err
					}
					return tx.DeletePool(ctx, p.ID)
				})
			}()
			time.Sleep(lockHold)
			return tx.DeletePool(ctx, p.ID)
		})
		mustNil(t, "LockPool and DeletePool (first)", first)
		wantErrIs(t, "LockPool and DeletePool (second)", <-other, storage.ErrNotFound)
		_, err := s.GetPool(ctx, p.ID)
		wantErrIs(t, "GetPool after the deletions", err, storage.ErrNotFound)
	})
}

// testLockPrincipalExclusive: Tx.LockPrincipalExclusive reads the
// principal as stored (ErrNotFound when missing), and two units of work
// that each take it so and then delete it (two deletions of one
// principal) run one after the other: one deletes it, the other finds it
// gone, neither deadlocks (docs/security.md A-95).
func testLockPrincipalExclusive(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	pr := newPrincipal(t, s, o.ID)
	mustNil(t, "WithTx(LockPrincipalExclusive)", s.WithTx(ctx, func(tx storage.Tx) error {
		got, err := tx.LockPrincipalExclusive(ctx, pr.ID)
		mustNil(t, "LockPrincipalExclusive", err)
		if got.ID != pr.ID || got.OrgID != pr.OrgID {
			t.Errorf("LockPrincipalExclusive = principal %q of %q, want %q of %q", got.ID, got.OrgID, pr.ID, pr.OrgID)
		}
		_, err = tx.LockPrincipalExclusive(ctx, "missing-"+storage.NewID())
		wantErrIs(t, "LockPrincipalExclusive(missing)", err, storage.ErrNotFound)
		return nil
	}))

	other := make(chan error, 1)
	first := s.WithTx(ctx, func(tx storage.Tx) error {
		if _, err := tx.LockPrincipalExclusive(ctx, pr.ID); err != nil {
			return err
		}
		go func() {
			other <- s.WithTx(ctx, func(tx storage.Tx) error {
				if _, err := tx.LockPrincipalExclusive(ctx, pr.ID); err != nil {
					return err
				}
				return tx.DeletePrincipal(ctx, pr.ID)
			})
		}()
		time.Sleep(lockHold)
		return tx.DeletePrincipal(ctx, pr.ID)
	})
	mustNil(t, "LockPrincipalExclusive and DeletePrincipal (first)", first)
	wantErrIs(t, "LockPrincipalExclusive and DeletePrincipal (second)", <-other, storage.ErrNotFound)
	_, err := s.GetPrincipal(ctx, pr.ID)
	wantErrIs(t, "GetPrincipal after the deletions", err, storage.ErrNotFound)
}
