package conformance

import (
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// testUnitOfWorkBoundReads: Tx.ListClients and Tx.ListPoolsOfPrincipal
// read in the unit of work, its own writes included, as the Store's
// methods of the same name read after it commits: a principal's deletion
// looks for what is bound to it there, after it has taken the
// principal's row (docs/security.md A-86).
func testUnitOfWorkBoundReads(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	pr := newPrincipal(t, s, o.ID)
	other := newPrincipal(t, s, o.ID)
	elsewhere := newClient(t, s) // another organization's client
	cl := clientRecord(o.ID, pr.ID)
	pool := poolRecord(o.ID, pr.ID)
	otherPool := poolRecord(o.ID, other.ID)
	otherPool.ID = storage.NewID()
	var inClients []storage.Client
	var inPools []storage.Pool
	mustNil(t, "WithTx", s.WithTx(ctx, func(tx storage.Tx) error {
		mustNil(t, "Tx.CreateClient", tx.CreateClient(ctx, cl))
		mustNil(t, "Tx.CreatePool", tx.CreatePool(ctx, pool))
		mustNil(t, "Tx.CreatePool(other principal)", tx.CreatePool(ctx, otherPool))
		var err error
		inClients, err = tx.ListClients(ctx, o.ID)
		mustNil(t, "Tx.ListClients", err)
		inPools, err = tx.ListPoolsOfPrincipal(ctx, pr.ID)
		mustNil(t, "Tx.ListPoolsOfPrincipal", err)
		none, err := tx.ListPoolsOfPrincipal(ctx, "missing-"+storage.NewID())
		mustNil(t, "Tx.ListPoolsOfPrincipal(missing)", err)
		if len(none) != 0 {
			t.Errorf("Tx.ListPoolsOfPrincipal(missing) = %d pools, want none", len(none))
		}
		return nil
	}))
	diff(t, "Tx.ListClients (its own write, not the other organization's client "+elsewhere.ID+")", []storage.Client{cl}, inClients)
	diff(t, "Tx.ListPoolsOfPrincipal (its own write, not the other principal's pool)", []storage.Pool{pool}, inPools)
	after, err := s.ListClients(ctx, o.ID)
	mustNil(t, "ListClients", err)
	diff(t, "Tx.ListClients against ListClients after the commit", after, inClients)
	afterPools, err := s.ListPoolsOfPrincipal(ctx, pr.ID)
	mustNil(t, "ListPoolsOfPrincipal", err)
	diff(t, "Tx.ListPoolsOfPrincipal against ListPoolsOfPrincipal after the commit", afterPools, inPools)
}
