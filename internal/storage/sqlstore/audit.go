package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const auditColumns = `id, event_time, org_id, actor, action, target, request_id, outcome, detail`

// defaultAuditLimit applies when AuditFilter.Limit is zero or less.
const defaultAuditLimit = 100

func scanAudit(r rowScanner) (storage.AuditEvent, error) {
	var e storage.AuditEvent
	err := r.Scan(&e.ID, timeCol{&e.Time}, &e.OrgID, &e.Actor, &e.Action, &e.Target, &e.RequestID, &e.Outcome, &e.Detail)
	return e, err
}

// AppendAudit implements storage.AuditStore: one transaction, all or none.
func (s *Store) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	const op = "append audit"
	if len(events) == 0 {
		return nil
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		// One statement prepared per batch (the audit writer sends up to
		// 256 events): the SQL is parsed once, not once per row.
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (`+auditColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`)
		if err != nil {
			return s.fail(op, err)
		}
		defer stmt.Close()
		for _, e := range events {
			if _, err := stmt.ExecContext(ctx,
				e.ID, s.ts(e.Time), e.OrgID, e.Actor, e.Action, e.Target, e.RequestID, e.Outcome, e.Detail); err != nil {
				return s.fail(op, err)
			}
		}
		return nil
	})
}

// ListAudit implements storage.AuditStore, newest first (a zero Time is
// the oldest). $2 is true when the filter has no Since.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	return queryList(ctx, s, "list audit", `SELECT `+auditColumns+` FROM audit_events
		WHERE ($1 = '' OR org_id = $1) AND ($2 OR event_time >= $3)
		ORDER BY event_time DESC NULLS LAST, id DESC LIMIT $4`,
		scanAudit, f.OrgID, f.Since.IsZero(), s.ts(f.Since), limit)
}

// MarkUsed implements storage.ReplayStore with a plain INSERT: the primary
// key makes a second use, concurrent or later, fail with ErrAlreadyExists
// until GarbageCollect removes the row after exp.
func (s *Store) MarkUsed(ctx context.Context, id string, exp time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO used_jtis (id, expires_at) VALUES ($1, $2)`, id, s.ts(exp))
	return s.fail("mark used", err)
}
