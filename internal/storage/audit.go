package storage

import (
	"context"
	"time"
)

// AuditEvent records who did what to which record, and how it ended.
type AuditEvent struct {
	ID        string
	Time      time.Time
	OrgID     string
	Actor     string
	Action    string
	Target    string
	RequestID string
	Outcome   string
	Detail    string // free text; never secret material
}

// AuditFilter selects audit events.
type AuditFilter struct {
	OrgID string    // empty: every organization
	Since time.Time // zero: from the beginning
	Limit int       // zero or less: 100
}

// AuditStore persists audit events. Events are append-only.
type AuditStore interface {
	// AppendAudit stores the events in one transaction: all or none.
	AppendAudit(ctx context.Context, events ...AuditEvent) error
	// ListAudit returns matching events newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// ReplayStore records one-time identifiers (a JWT's jti, namespaced by its
// issuer) until they expire.
type ReplayStore interface {
	// MarkUsed records id as used until exp. It returns ErrAlreadyExists if
	// id is already recorded (rows leave only through GarbageCollect after
	// exp, so a replay fails closed); of concurrent callers with the same id
	// exactly one succeeds.
	MarkUsed(ctx context.Context, id string, exp time.Time) error
}
