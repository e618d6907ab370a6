package storage

import (
	"context"
	"time"
)

// Tx is what a unit of work may do: create, update and delete the records
// whose changes are audited, and append their audit events. Everything
// done through one Tx commits together or not at all
// (docs/design.md#audit). Each method behaves as the Store's method of the
// same name (the same errors; an updater's own error comes back as is and
// the row is unchanged), except that nothing is durable before WithTx
// commits.
type Tx interface {
	CreateOrganization(ctx context.Context, o Organization) error
	UpdateOrganization(ctx context.Context, id string, fn func(Organization) (Organization, error)) error
	DeleteOrganization(ctx context.Context, id string) error
	CreatePrincipal(ctx context.Context, p Principal) error
	UpdatePrincipal(ctx context.Context, id string, fn func(Principal) (Principal, error)) error
	DeletePrincipal(ctx context.Context, id string) error
	CreateUpstreamIdentity(ctx context.Context, u UpstreamIdentity) error
	CreateClient(ctx context.Context, c Client) error
	UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) error
	DeleteClient(ctx context.Context, id string) error
	CreatePAT(ctx context.Context, p PAT) error
	UpdatePAT(ctx context.Context, id string, fn func(PAT) (PAT, error)) error
	DeletePAT(ctx context.Context, id string) error
	CreateHostToken(ctx context.Context, t HostToken) error
	UpdateHostToken(ctx context.Context, id string, fn func(HostToken) (HostToken, error)) error
	DeleteHostToken(ctx context.Context, id string) error
	CreatePool(ctx context.Context, p Pool) error
	UpdatePool(ctx context.Context, id string, fn func(Pool) (Pool, error)) error
	DeletePool(ctx context.Context, id string) error
	// LockPool reads pool id and holds it until the unit of work ends,
	// writing nothing: another unit of work's change or deletion of the
	// pool waits for this one, and two that lock the same pool run one
	// after the other; a provider created in the pool by another (the
	// foreign key's check) does not wait, so neither side deadlocks on it
	// (docs/security.md A-85). Returns ErrNotFound.
	LockPool(ctx context.Context, id string) (Pool, error)
	CreateProvider(ctx context.Context, p Provider) error
	UpdateProvider(ctx context.Context, poolID, id string, fn func(Provider) (Provider, error)) error
	DeleteProvider(ctx context.Context, poolID, id string) error
	PutRunnerKey(ctx context.Context, k RunnerKey) error
	DeleteRunnerKey(ctx context.Context, runnerID string) error
	CreateExchangeToken(ctx context.Context, t ExchangeToken) error
	UpdateSigningKeys(ctx context.Context, fn func(old []SigningKey) ([]SigningKey, error)) error
	// PutRevocation stores a row that must commit with the change that
	// calls for it: a pool's or provider's trust changed ends what was
	// exchanged under the old trust (docs/security.md A-62).
	PutRevocation(ctx context.Context, r Revocation) error
	// MarkUsed records a one-time value that must commit with the change
	// it allows: a page's form that creates once (docs/security.md T-165).
	MarkUsed(ctx context.Context, id string, earliest, exp time.Time) error
	AppendAudit(ctx context.Context, events ...AuditEvent) error
	// LockOrganization and LockPrincipal read a row and hold it, until
	// the unit of work ends, against a concurrent update or deletion
	// (not against other locks: two creates under one owner do not wait
	// for each other). A create that writes a row owned by an
	// organization or a principal calls one in the transaction that
	// writes, and checks the owner on what it returns; a deletion
	// disables or deletes the owner first, so it waits for that create
	// to commit, or the create finds the owner disabled or gone
	// (ErrNotFound) and stores nothing (docs/design.md#owners-held-while-their-rows-are-written,
	// docs/security.md A-87). Lock principals in ascending id order.
	LockOrganization(ctx context.Context, id string) (Organization, error)
	LockPrincipal(ctx context.Context, id string) (Principal, error)
	// LockPrincipalExclusive reads and holds the principal's row as
	// LockPrincipal does, and also against another LockPrincipalExclusive
	// or LockPrincipal: for a unit of work that then deletes the row. Two
	// deletions of one principal that each held it shared would each wait
	// for the other's hold to delete it (a deadlock on PostgreSQL); with
	// this one the second waits for the first and then finds the row gone
	// (ErrNotFound; docs/security.md A-95).
	LockPrincipalExclusive(ctx context.Context, id string) (Principal, error)
	// ListClients and ListPoolsOfPrincipal read as the Store's methods
	// of the same name, inside the unit of work: a principal's deletion
	// looks for what is bound to it after it has taken the principal's
	// row, so a client or pool bound meanwhile (which holds the principal
	// while it is written) is seen and refuses the deletion
	// (docs/security.md A-86).
	ListClients(ctx context.Context, orgID string) ([]Client, error)
	ListPoolsOfPrincipal(ctx context.Context, principalID string) ([]Pool, error)
}

// UnitOfWork runs several writes in one transaction.
type UnitOfWork interface {
	// WithTx runs fn once inside one transaction and commits when fn
	// returns nil; when fn, a write or the commit fails, nothing fn wrote
	// is stored and the error is returned (fn's own error unchanged).
	// Inside fn use only tx: on SQLite a call on the Store itself would
	// wait for the transaction's write lock.
	WithTx(ctx context.Context, fn func(tx Tx) error) error
}

// EventNotStored is WithEvent's error when the change succeeded but its
// audit event could not be appended; nothing was committed.
type EventNotStored struct{ Err error }

func (e EventNotStored) Error() string { return "audit event not stored: " + e.Err.Error() }

func (e EventNotStored) Unwrap() error { return e.Err }

// WithEvent runs change and appends the event ev returns (built after
// change, from what it read) in one transaction of u: both commit, or
// neither (docs/design.md#audit). change's error is returned as it is; a
// failed append as EventNotStored, so callers can answer "unavailable".
func WithEvent(ctx context.Context, u UnitOfWork, change func(Tx) error, ev func() AuditEvent) error {
	return u.WithTx(ctx, func(tx Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, ev()); err != nil {
			return EventNotStored{err}
		}
		return nil
	})
}

// OwnerReader reads the owners a create checks. A Store is one, for the
// early answer; Held(tx) is one that holds what it reads, for the same
// check again inside the unit of work that writes (docs/design.md#owners-held-while-their-rows-are-written).
type OwnerReader interface {
	GetOrganization(ctx context.Context, id string) (Organization, error)
	GetPrincipal(ctx context.Context, id string) (Principal, error)
}

// Held is tx as an OwnerReader: its reads are Tx.LockOrganization and
// Tx.LockPrincipal.
func Held(tx Tx) OwnerReader { return heldTx{tx} }

type heldTx struct{ tx Tx }

func (h heldTx) GetOrganization(ctx context.Context, id string) (Organization, error) {
	return h.tx.LockOrganization(ctx, id)
}

func (h heldTx) GetPrincipal(ctx context.Context, id string) (Principal, error) {
	return h.tx.LockPrincipal(ctx, id)
}
