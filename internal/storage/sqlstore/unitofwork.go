package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// WithTx implements storage.UnitOfWork on one database transaction.
func (s *Store) WithTx(ctx context.Context, fn func(tx storage.Tx) error) error {
	return s.inTx(ctx, "unit of work", func(tx *sql.Tx) error { return fn(txStore{s: s, tx: tx}) })
}

// txStore is storage.Tx over one transaction; it writes with the same
// statements as the Store's own methods.
type txStore struct {
	s  *Store
	tx *sql.Tx
}

func (t txStore) CreateOrganization(ctx context.Context, o storage.Organization) error {
	return t.s.createOrganization(ctx, t.tx, o)
}

func (t txStore) CreatePrincipal(ctx context.Context, p storage.Principal) error {
	return t.s.createPrincipal(ctx, t.tx, p)
}

func (t txStore) CreateUpstreamIdentity(ctx context.Context, u storage.UpstreamIdentity) error {
	return t.s.createUpstreamIdentity(ctx, t.tx, u)
}

func (t txStore) CreateClient(ctx context.Context, c storage.Client) error {
	return t.s.createClient(ctx, t.tx, c)
}

func (t txStore) CreatePAT(ctx context.Context, p storage.PAT) error {
	return t.s.createPAT(ctx, t.tx, p)
}

func (t txStore) CreateHostToken(ctx context.Context, h storage.HostToken) error {
	return t.s.createHostToken(ctx, t.tx, h)
}

func (t txStore) UpdateSigningKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error)) error {
	return t.s.updateSigningKeys(ctx, t.tx, fn)
}

func (t txStore) MarkUsed(ctx context.Context, id string, earliest, exp time.Time) error {
	return t.s.markUsed(ctx, t.tx, id, earliest, exp)
}

func (t txStore) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return t.s.fail("append audit", t.s.appendAudit(ctx, t.tx, events))
}

func (t txStore) UpdateOrganization(ctx context.Context, id string, fn func(storage.Organization) (storage.Organization, error)) error {
	return t.s.updateOrganization(ctx, t.tx, id, fn)
}

func (t txStore) DeleteOrganization(ctx context.Context, id string) error {
	return t.s.deleteOrganization(ctx, t.tx, id)
}

func (t txStore) UpdatePrincipal(ctx context.Context, id string, fn func(storage.Principal) (storage.Principal, error)) error {
	return t.s.updatePrincipal(ctx, t.tx, id, fn)
}

func (t txStore) DeletePrincipal(ctx context.Context, id string) error {
	return t.s.deletePrincipal(ctx, t.tx, id)
}

func (t txStore) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	return t.s.updateClient(ctx, t.tx, id, fn)
}

func (t txStore) DeleteClient(ctx context.Context, id string) error {
	return t.s.deleteClient(ctx, t.tx, id)
}

func (t txStore) UpdatePAT(ctx context.Context, id string, fn func(storage.PAT) (storage.PAT, error)) error {
	return t.s.updatePAT(ctx, t.tx, id, fn)
}

func (t txStore) DeletePAT(ctx context.Context, id string) error {
	return t.s.deletePAT(ctx, t.tx, id)
}

func (t txStore) UpdateHostToken(ctx context.Context, id string, fn func(storage.HostToken) (storage.HostToken, error)) error {
	return t.s.updateHostToken(ctx, t.tx, id, fn)
}

func (t txStore) DeleteHostToken(ctx context.Context, id string) error {
	return t.s.deleteHostToken(ctx, t.tx, id)
}

func (t txStore) CreatePool(ctx context.Context, p storage.Pool) error {
	return t.s.createPool(ctx, t.tx, p)
}

func (t txStore) UpdatePool(ctx context.Context, id string, fn func(storage.Pool) (storage.Pool, error)) error {
	return t.s.updatePool(ctx, t.tx, id, fn)
}

func (t txStore) DeletePool(ctx context.Context, id string) error {
	return t.s.deletePool(ctx, t.tx, id)
}

// LockPool takes the pool's row FOR NO KEY UPDATE on PostgreSQL: an
// update or deletion (FOR UPDATE) waits, as does another LockPool, while a
// foreign key's check (FOR KEY SHARE) does not. FOR SHARE would let two
// lockers each hold the row and then deadlock when both delete it. On
// SQLite the unit of work already holds the database's write lock
// (_txlock=immediate).
func (t txStore) LockPool(ctx context.Context, id string) (storage.Pool, error) {
	if unstorable(id) {
		return storage.Pool{}, errUnstorable
	}
	lock := ""
	if t.s.dialect == dialectPostgres {
		lock = " FOR NO KEY UPDATE"
	}
	p, err := scanPool(t.tx.QueryRowContext(ctx, `SELECT `+poolColumns+` FROM pools WHERE id = $1`+lock, id))
	return p, t.s.fail("lock pool", err)
}

func (t txStore) CreateProvider(ctx context.Context, p storage.Provider) error {
	return t.s.createProvider(ctx, t.tx, p)
}

func (t txStore) UpdateProvider(ctx context.Context, poolID, id string, fn func(storage.Provider) (storage.Provider, error)) error {
	return t.s.updateProvider(ctx, t.tx, poolID, id, fn)
}

func (t txStore) DeleteProvider(ctx context.Context, poolID, id string) error {
	return t.s.deleteProvider(ctx, t.tx, poolID, id)
}

func (t txStore) PutRunnerKey(ctx context.Context, k storage.RunnerKey) error {
	return t.s.putRunnerKey(ctx, t.tx, k)
}

func (t txStore) DeleteRunnerKey(ctx context.Context, runnerID string) error {
	return t.s.deleteRunnerKey(ctx, t.tx, runnerID)
}

func (t txStore) CreateExchangeToken(ctx context.Context, x storage.ExchangeToken) error {
	return t.s.createExchangeToken(ctx, t.tx, x)
}

func (t txStore) PutRevocation(ctx context.Context, r storage.Revocation) error {
	return t.s.putRevocation(ctx, t.tx, r)
}

// LockOrganization implements storage.Tx: FOR SHARE on PostgreSQL
// conflicts with the UPDATE and DELETE of the row, not with another
// share; SQLite's write transactions begin IMMEDIATE and so already
// exclude every other writer (see forUpdate).
func (t txStore) LockOrganization(ctx context.Context, id string) (storage.Organization, error) {
	if unstorable(id) {
		return storage.Organization{}, errUnstorable
	}
	o, err := scanOrganization(t.tx.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`+t.s.forShare(), id))
	return o, t.s.fail("lock organization", err)
}

// LockPrincipal implements storage.Tx as LockOrganization does.
func (t txStore) LockPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	if unstorable(id) {
		return storage.Principal{}, errUnstorable
	}
	p, err := scanPrincipal(t.tx.QueryRowContext(ctx, `SELECT `+principalColumns+` FROM principals WHERE id = $1`+t.s.forShare(), id))
	return p, t.s.fail("lock principal", err)
}

// LockPrincipalExclusive implements storage.Tx: FOR NO KEY UPDATE on
// PostgreSQL conflicts with FOR SHARE and with itself, as LockPool's
// does, and the DELETE that follows strengthens it; on SQLite the unit of
// work already holds the database's write lock.
func (t txStore) LockPrincipalExclusive(ctx context.Context, id string) (storage.Principal, error) {
	if unstorable(id) {
		return storage.Principal{}, errUnstorable
	}
	lock := ""
	if t.s.dialect == dialectPostgres {
		lock = " FOR NO KEY UPDATE"
	}
	p, err := scanPrincipal(t.tx.QueryRowContext(ctx, `SELECT `+principalColumns+` FROM principals WHERE id = $1`+lock, id))
	return p, t.s.fail("lock principal", err)
}

// ListClients implements storage.Tx with the Store's query, in the
// transaction: a statement run after the principal's deletion waited for
// a binding's lock sees that binding committed.
func (t txStore) ListClients(ctx context.Context, orgID string) ([]storage.Client, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients
		WHERE $1 = '' OR org_id = $1 ORDER BY id`, orgID)
	return collect(t.s, "list clients", rows, err, scanClient)
}

// ListPoolsOfPrincipal implements storage.Tx as ListClients does.
func (t txStore) ListPoolsOfPrincipal(ctx context.Context, principalID string) ([]storage.Pool, error) {
	if unstorable(principalID) {
		return nil, nil
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT `+poolColumns+` FROM pools WHERE principal_id = $1 ORDER BY id`, principalID)
	return collect(t.s, "list pools of principal", rows, err, scanPool)
}
