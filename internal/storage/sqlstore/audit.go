package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
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

// ListAudit implements storage.AuditStore. Events with a time come first,
// newest first, in the order of the (event_time, id) indexes, so a page
// after a position is an index range, not a scan past every newer event;
// events without a time (NULL, the oldest) follow, by ID. No time bound
// matches those.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	const op = "list audit"
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	var out []storage.AuditEvent
	if f.After == nil || !f.After.Time.IsZero() {
		var q auditQuery
		q.match(f)
		q.where("event_time IS NOT NULL")
		if !f.Since.IsZero() {
			q.where("event_time >= " + q.arg(s.ts(f.Since)))
		}
		if !f.Until.IsZero() {
			q.where("event_time < " + q.arg(s.ts(f.Until)))
		}
		if f.After != nil {
			q.where("(event_time, id) < (" + q.arg(s.ts(f.After.Time)) + ", " + q.arg(f.After.ID) + ")")
		}
		query := q.sql("event_time DESC, id DESC", limit)
		timed, err := queryList(ctx, s, op, query, scanAudit, q.args...)
		if err != nil {
			return nil, err
		}
		out = timed
	}
	if len(out) == limit || !f.Since.IsZero() || !f.Until.IsZero() {
		return out, nil
	}
	var q auditQuery
	q.match(f)
	q.where("event_time IS NULL")
	if f.After != nil && f.After.Time.IsZero() {
		q.where("id < " + q.arg(f.After.ID))
	}
	query := q.sql("id DESC", limit-len(out))
	untimed, err := queryList(ctx, s, op, query, scanAudit, q.args...)
	if err != nil {
		return nil, err
	}
	return append(out, untimed...), nil
}

// auditQuery builds a ListAudit statement: only the conditions a filter
// sets, so each query can use an index (a catch-all condition such as
// "$1 is empty or org_id = $1" cannot on PostgreSQL). Values are always
// bound parameters, never SQL text.
type auditQuery struct {
	conds []string
	args  []any
}

func (q *auditQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *auditQuery) where(cond string) { q.conds = append(q.conds, cond) }

// match adds the exact-match fields of f.
func (q *auditQuery) match(f storage.AuditFilter) {
	for _, c := range []struct{ col, v string }{
		{"org_id", f.OrgID}, {"actor", f.Actor}, {"action", f.Action},
		{"target", f.Target}, {"outcome", f.Outcome}, {"request_id", f.RequestID},
	} {
		if c.v != "" {
			q.where(c.col + " = " + q.arg(c.v))
		}
	}
}

// sql returns the statement; it binds limit last, so call it before
// reading q.args.
func (q *auditQuery) sql(order string, limit int) string {
	return `SELECT ` + auditColumns + ` FROM audit_events WHERE ` + strings.Join(q.conds, " AND ") +
		` ORDER BY ` + order + ` LIMIT ` + q.arg(limit)
}

// MarkUsed implements storage.ReplayStore with a plain INSERT: the primary
// key makes a second use, concurrent or later, fail with ErrAlreadyExists
// until GarbageCollect removes the row after exp.
func (s *Store) MarkUsed(ctx context.Context, id string, exp time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO used_jtis (id, expires_at) VALUES ($1, $2)`, id, s.ts(exp))
	return s.fail("mark used", err)
}
