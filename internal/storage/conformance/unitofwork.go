package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testUnitOfWork: a create and its audit event commit together
// (docs/design.md#audit): a failed event rolls the create back, a failed
// create rolls the event back, and an error from fn rolls everything back
// and comes back unchanged.
func testUnitOfWork(t *testing.T, s storage.Store) {
	ctx := t.Context()
	owner := newTokenOwner(t, s)
	events := func(target string) int {
		t.Helper()
		evs, err := s.ListAudit(ctx, storage.AuditFilter{Target: target})
		mustNil(t, "ListAudit", err)
		return len(evs)
	}

	// Every create of the contract and its event, committed together.
	org := orgRecord()
	pr := principalRecord(org.ID)
	cl := clientRecord(org.ID, pr.ID)
	pat := patRecord(org.ID, pr.ID)
	ht := owner.hostToken("", now().Add(time.Hour))
	ev := auditRecord(org.ID, now())
	mustNil(t, "WithTx(creates)", s.WithTx(ctx, func(tx storage.Tx) error {
		for _, f := range []func() error{
			func() error { return tx.CreateOrganization(ctx, org) },
			func() error { return tx.CreatePrincipal(ctx, pr) },
			func() error { return tx.CreateClient(ctx, cl) },
			func() error { return tx.CreatePAT(ctx, pat) },
			func() error { return tx.CreateHostToken(ctx, ht) },
			func() error { return tx.AppendAudit(ctx, ev) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err := s.GetPAT(ctx, pat.ID)
	mustNil(t, "GetPAT after WithTx", err)
	_, err = s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken after WithTx", err)
	_, err = s.GetClient(ctx, cl.ID)
	mustNil(t, "GetClient after WithTx", err)
	if events(ev.Target) != 1 {
		t.Error("the audit event of the unit of work is missing")
	}

	// A failed event (its ID is taken) rolls the create back.
	pat2 := patRecord(owner.org.ID, owner.principal.ID)
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreatePAT(ctx, pat2); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetPAT(ctx, pat2.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetPAT after its event failed = %v, want ErrNotFound (rolled back)", err)
	}

	// A failed create (its digest is taken) rolls the event back.
	dup := patRecord(owner.org.ID, owner.principal.ID)
	dup.Digest = pat.Digest
	ev2 := auditRecord(owner.org.ID, now())
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.AppendAudit(ctx, ev2); err != nil {
			return err
		}
		return tx.CreatePAT(ctx, dup)
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx with a taken digest = %v, want ErrAlreadyExists", err)
	}
	if events(ev2.Target) != 0 {
		t.Error("the event of a failed create was stored")
	}

	// fn's own error rolls back and is returned unchanged.
	boom := errors.New("caller changed its mind")
	org3 := orgRecord()
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreateOrganization(ctx, org3); err != nil {
			return err
		}
		return boom
	})
	if err != boom { //nolint:errorlint // the very error, unwrapped
		t.Errorf("WithTx = %v, want fn's error unchanged", err)
	}
	if _, err := s.GetOrganization(ctx, org3.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetOrganization after fn failed = %v, want ErrNotFound", err)
	}
}
