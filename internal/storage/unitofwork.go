package storage

import "context"

// Tx is what a unit of work may do: create the records whose creation is
// audited, and append their audit events. Everything done through one Tx
// commits together or not at all (docs/design.md#audit).
type Tx interface {
	CreateOrganization(ctx context.Context, o Organization) error
	CreatePrincipal(ctx context.Context, p Principal) error
	CreateClient(ctx context.Context, c Client) error
	CreatePAT(ctx context.Context, p PAT) error
	CreateHostToken(ctx context.Context, t HostToken) error
	AppendAudit(ctx context.Context, events ...AuditEvent) error
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
