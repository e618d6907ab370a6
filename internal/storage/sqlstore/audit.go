package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opensts/sts/internal/storage"
)

const auditColumns = `id, event_time, org_id, actor, action, target, request_id, outcome, detail, client_ip, user_agent`

// auditColumnCount is the number of auditColumns, the parameters per row.
const auditColumnCount = 11

// auditRowsPerInsert bounds the rows of one INSERT: 500 × 11 = 5 500 bound
// parameters, well inside PostgreSQL's 65 535 and SQLite's 32 766.
const auditRowsPerInsert = 500

// defaultAuditLimit applies when AuditFilter.Limit is zero or less.
const defaultAuditLimit = 100

func scanAudit(r rowScanner) (storage.AuditEvent, error) {
	var e storage.AuditEvent
	err := r.Scan(&e.ID, timeCol{&e.Time}, &e.OrgID, &e.Actor, &e.Action, &e.Target, &e.RequestID, &e.Outcome, &e.Detail, &e.ClientIP, &e.UserAgent)
	return e, err
}

// AppendAudit implements storage.AuditStore: one transaction, all or none.
// On PostgreSQL a batch is one multi-row INSERT per 500 events: one
// statement and one commit instead of one network round trip per row,
// which is what kept the audit writer from keeping up
// (docs/performance.md#audit-writer). On SQLite, in-process, a batch is
// prepared multi-row INSERTs of sqliteAuditRowsPerExec rows inside the
// batch's transaction (see appendAudit).
func (s *Store) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	const op = "append audit"
	if len(events) == 0 {
		return nil
	}
	if s.dialect == dialectPostgres && len(events) <= auditRowsPerInsert {
		// One statement is atomic on its own: no BEGIN/COMMIT round trips.
		return s.fail(op, s.insertAudit(ctx, s.db, events))
	}
	if s.dialect == dialectSQLite {
		// Prepared before the transaction takes its connection: preparing
		// on the pool inside it would wait for a second connection, which
		// concurrent transactions may all be holding.
		for _, q := range []string{sqliteAuditInsertRows, sqliteAuditInsertRow} {
			if _, err := s.prepared(ctx, q); err != nil {
				return s.fail(op, err)
			}
		}
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error { return s.fail(op, s.appendAudit(ctx, tx, events)) })
}

// sqliteAuditRowsPerExec is how many rows one SQLite INSERT of the audit
// writer stores. One statement keeps SQLite's cursors open from row to
// row, so a time-ordered row lands at the end of each B-tree without a
// descent from the root, and one Exec's bookkeeping (database/sql, the
// driver) is shared by 32 rows: about 40 % fewer instructions and half the
// allocations an event against one INSERT per row; 8 and 64 rows measured
// no better (docs/performance.md "Cost per event on SQLite"). AppendAudit
// prepares the statement once per Store, not per batch.
const sqliteAuditRowsPerExec = 32

// sqliteAuditInsert is the SQLite INSERT of n rows. Anonymous "?"
// parameters, not "$N": modernc.org/sqlite asks SQLite for each
// parameter's name on every Exec and copies a named one into a new Go
// string; an anonymous one has none.
//
// OR FAIL: a constraint violation stops the statement and leaves the rows
// it already inserted, where the default (ABORT) undoes them. Undoing a
// statement inside a transaction needs a statement journal: SQLite copies
// every page the statement changes into it first, and spills it to a temp
// file past 64 KiB, which a 32-row INSERT does (about 1 % of a
// client_credentials request's CPU; docs/performance.md "The audit
// writer's wake-ups and statement journal"). Nothing here needs the
// statement undone alone: every caller rolls the whole transaction back
// when a statement fails (AppendAudit's batch, a unit of work), so what
// the store holds after a failure is the same
// (TestSQLiteAuditFailedBatchStoresNothing).
func sqliteAuditInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR FAIL INTO audit_events (` + auditColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

var (
	sqliteAuditInsertRow  = sqliteAuditInsert(1)
	sqliteAuditInsertRows = sqliteAuditInsert(sqliteAuditRowsPerExec)
)

// appendAudit writes events inside tx.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, events []storage.AuditEvent) error {
	if s.dialect != dialectSQLite {
		return s.insertAudit(ctx, tx, events)
	}
	// Each Exec gets a context without cancellation: the driver starts a
	// goroutine per statement to watch a cancellable context
	// (docs/performance.md#audit-writer). The batch still stops at its
	// deadline: ctx bounds BEGIN and COMMIT, and it is checked before
	// every statement. An INSERT in a transaction that already holds the
	// write lock (_txlock=immediate) never waits for another connection.
	rowCtx := context.WithoutCancel(ctx)
	args := make([]any, 0, min(len(events), sqliteAuditRowsPerExec)*auditColumnCount)
	var many, one *sql.Stmt // tx's statements, made on first use
	var row auditRow
	for len(events) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, stmt, query := sqliteAuditRowsPerExec, &many, sqliteAuditInsertRows
		if len(events) < n {
			n, stmt, query = 1, &one, sqliteAuditInsertRow
		}
		if *stmt == nil {
			var err error
			if *stmt, err = s.txStmt(ctx, tx, query); err != nil {
				return err
			}
		}
		args = args[:0]
		for i := range events[:n] {
			args = row.append(args, s, &events[i])
		}
		if _, err := (*stmt).ExecContext(rowCtx, args...); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// txStmt is query as a statement of tx: the Store's prepared statement
// (see prepared) when AppendAudit made it before the transaction began,
// else prepared on tx's own connection for this transaction (a unit of
// work's AppendAudit).
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	return tx.PrepareContext(ctx, query)
}

// auditRow boxes the columns of a batch's events for database/sql, row
// after row. A column equal to the same column of the row before reuses
// that row's boxed value: the events of a busy server share most of their
// columns (a client's organization, actor, action, target, outcome,
// detail, address, User-Agent), and boxing a string into an any allocates.
// Only an equal value is reused (TestAuditRepeatedValuesStoredAsSent);
// TestSQLiteAuditRepeatedValuesBoxedOnce counts what it saves
// (docs/performance.md "`client_credentials`, eleventh pass").
type auditRow struct {
	last storage.AuditEvent
	vals [auditColumnCount]any
	used bool
}

// append appends e's columns, in auditColumns' order, to args.
func (r *auditRow) append(args []any, s *Store, e *storage.AuditEvent) []any {
	first := !r.used
	box := func(i int, v, last string) {
		if first || v != last {
			r.vals[i] = auditText(v)
		}
	}
	box(0, e.ID, r.last.ID)
	if first || e.Time != r.last.Time {
		r.vals[1] = s.ts(e.Time)
	}
	box(2, e.OrgID, r.last.OrgID)
	box(3, e.Actor, r.last.Actor)
	box(4, e.Action, r.last.Action)
	box(5, e.Target, r.last.Target)
	box(6, e.RequestID, r.last.RequestID)
	box(7, e.Outcome, r.last.Outcome)
	box(8, e.Detail, r.last.Detail)
	box(9, e.ClientIP, r.last.ClientIP)
	box(10, e.UserAgent, r.last.UserAgent)
	r.last, r.used = *e, true
	return append(args, r.vals[:]...)
}

// auditText is v as the audit trail can store it on both backends: a NUL
// character and bytes that are not UTF-8, which PostgreSQL refuses in text
// (SQLSTATE 22021), become the replacement character U+FFFD. An event
// names what a request or a token said (a subject's sub, an actor chain,
// a client_id), so the trail is the one write that cannot refuse such
// text: the event of the refusal must be stored too. PostgreSQL's refusal
// failed the whole batch, which the writer retried for ever while every
// later event, anyone's, waited behind it (docs/security.md T-249). Text
// that needs nothing is returned as it is, without a copy.
func auditText(v string) string {
	if strings.IndexByte(v, 0) < 0 && utf8.ValidString(v) {
		return v
	}
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "\uFFFD")
}

// execer is what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertAudit writes events with multi-row INSERTs of at most
// auditRowsPerInsert rows each.
func (s *Store) insertAudit(ctx context.Context, db execer, events []storage.AuditEvent) error {
	for len(events) > 0 {
		n := min(len(events), auditRowsPerInsert)
		var b strings.Builder
		b.Grow(64 + n*60)
		b.WriteString(`INSERT INTO audit_events (` + auditColumns + `) VALUES `)
		args := make([]any, 0, n*auditColumnCount)
		var row auditRow
		for i := range events[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for c := range auditColumnCount {
				if c > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(i*auditColumnCount + c + 1))
			}
			b.WriteByte(')')
			args = row.append(args, s, &events[i])
		}
		if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// PurgeAudit implements storage.AuditStore: one DELETE of at most limit
// rows, chosen oldest first through the (event_time, id) index.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	const op = "purge audit"
	if limit <= 0 {
		return 0, fmt.Errorf("%s: limit must be positive, got %d", op, limit)
	}
	if before.IsZero() {
		return 0, nil
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM audit_events WHERE id IN (
		SELECT id FROM audit_events WHERE event_time < $1 ORDER BY event_time, id LIMIT $2)`, s.ts(before), limit)
	if err != nil {
		return 0, s.fail(op, err)
	}
	n, err := res.RowsAffected()
	return n, s.fail(op, err)
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
		{"outcome", f.Outcome}, {"request_id", f.RequestID},
	} {
		if c.v != "" {
			// Stored through auditText, so matched through it: the
			// same answer on both backends, never a refused query.
			q.where(c.col + " = " + q.arg(auditText(c.v)))
		}
	}
	if f.Target != "" {
		in := []string{q.arg(auditText(f.Target))}
		for _, t := range f.OldTargets {
			in = append(in, q.arg(auditText(t)))
		}
		q.where("target IN (" + strings.Join(in, ", ") + ")")
	}
}

// sql returns the statement; it binds limit last, so call it before
// reading q.args.
func (q *auditQuery) sql(order string, limit int) string {
	return `SELECT ` + auditColumns + ` FROM audit_events WHERE ` + strings.Join(q.conds, " AND ") +
		` ORDER BY ` + order + ` LIMIT ` + q.arg(limit)
}

// Used implements storage.ReplayStore with one SELECT.
func (s *Store) Used(ctx context.Context, id string, earliest time.Time) (bool, error) {
	if earliest.IsZero() {
		earliest = time.Unix(0, 0) // before every restore
	}
	var used bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM used_jtis WHERE id = $1)
		OR EXISTS (SELECT 1 FROM restores WHERE restored_at > $2)`, id, s.ts(earliest)).Scan(&used); err != nil {
		return false, s.fail("used", err)
	}
	return used, nil
}

// MarkUsed implements storage.ReplayStore with one INSERT: the primary
// key makes a second use, concurrent or later, fail with ErrAlreadyExists
// until GarbageCollect removes the row after exp, and a restore recorded
// after earliest inserts nothing, which is ErrAlreadyExists too
// (docs/security.md F-62).
func (s *Store) MarkUsed(ctx context.Context, id string, earliest, exp time.Time) error {
	return s.markUsed(ctx, s.db, id, earliest, exp)
}

// markUsed is MarkUsed on db: the Store's pool or a unit of work's
// transaction.
func (s *Store) markUsed(ctx context.Context, db execer, id string, earliest, exp time.Time) error {
	if earliest.IsZero() {
		earliest = time.Unix(0, 0) // before every restore
	}
	res, err := db.ExecContext(ctx, `INSERT INTO used_jtis (id, expires_at) SELECT $1, $2
		WHERE NOT EXISTS (SELECT 1 FROM restores WHERE restored_at > $3)`, id, s.ts(exp), s.ts(earliest))
	if err != nil {
		return s.fail("mark used", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail("mark used", err)
	} else if n == 0 {
		return fmt.Errorf("mark used: presented before a restore: %w", storage.ErrAlreadyExists)
	}
	return nil
}
