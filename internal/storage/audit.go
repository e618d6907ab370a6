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
	// ClientIP is the address of the request's client as the server
	// resolved it (http.trusted_proxies); empty when no request is behind
	// the event (CLI, scheduler).
	ClientIP string
	// UserAgent is the request's User-Agent header, sanitized and
	// truncated by the caller (internal/audit.Caller).
	UserAgent string
}

// AuditFilter selects audit events: every set field must match. The
// string fields match exactly; an empty one matches everything.
type AuditFilter struct {
	OrgID  string // empty: every organization
	Actor  string
	Action string
	Target string
	// OldTargets are earlier spellings of Target, matched as well: events
	// written before targets became kind:id (see audit.OldTargets).
	OldTargets []string
	Outcome    string
	RequestID  string
	Since      time.Time // inclusive; zero: from the beginning
	Until      time.Time // exclusive; zero: no upper bound
	// After continues a listing: only events that come after this
	// position in ListAudit's order. nil starts at the newest event.
	After *AuditPosition
	Limit int // zero or less: 100
}

// AuditPosition is a place in ListAudit's order: the Time and ID of the
// last event of the previous page. Paging by position, not by offset,
// neither skips nor repeats an event when newer ones are appended
// meanwhile.
type AuditPosition struct {
	Time time.Time
	ID   string
}

// AuditStore persists audit events. Events are append-only.
type AuditStore interface {
	// AppendAudit stores the events in one transaction: all or none. It
	// keeps no reference to events after it returns: the audit writer
	// hands it the same slice for every batch.
	AppendAudit(ctx context.Context, events ...AuditEvent) error
	// ListAudit returns at most f.Limit matching events newest first: by
	// Time descending, then ID descending. Events with a zero Time come
	// last (the oldest) and match no Since or Until bound.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// PurgeAudit deletes at most limit events whose Time is before before,
	// oldest first, and returns how many it deleted; retention calls it in
	// a loop so no statement holds locks for long. Events without a Time
	// are kept. limit must be positive.
	PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error)
}

// ReplayStore records one-time identifiers (a JWT's jti, namespaced by its
// issuer) until they expire.
type ReplayStore interface {
	// MarkUsed records id as used until exp. It returns ErrAlreadyExists if
	// id is already recorded (rows leave only through GarbageCollect after
	// exp, so a replay fails closed); of concurrent callers with the same id
	// exactly one succeeds. earliest is the earliest moment the identifier
	// can have been presented (its iat less the leeway): if a restore from
	// a backup happened after it, MarkUsed returns ErrAlreadyExists as
	// well, since the record of an earlier use may have gone with the
	// replaced database (docs/security.md F-62). A zero earliest counts as
	// before every restore.
	MarkUsed(ctx context.Context, id string, earliest, exp time.Time) error
	// Used reports, writing nothing, whether MarkUsed(id, earliest, …)
	// would now return ErrAlreadyExists: id is recorded, or a restore
	// happened after earliest. A caller refuses a replay with it before
	// doing work; MarkUsed still decides between concurrent callers.
	Used(ctx context.Context, id string, earliest time.Time) (bool, error)
}

// RestoreCounts is what the step after a restore ended in the restored
// database (docs/security.md F-61, F-62): refresh tokens revoked, and the
// one-time or revocable artifacts deleted, whose use or end after the
// backup the backup cannot know.
type RestoreCounts struct {
	RefreshTokens  int64 // revoked
	ExchangeTokens int64 // gitpod.v1 exchange tokens deleted
	AuthCodes      int64 // authorization codes deleted
	LoginLinks     int64 // one-time sign-in links deleted
	WebSessions    int64 // browser sessions deleted
}
