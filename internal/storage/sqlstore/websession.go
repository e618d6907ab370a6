package sqlstore

import (
	"context"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const webSessionColumns = `id, digest, org_id, principal_id, method, user_agent, created_at, last_seen_at, expires_at, auth_at, lineage`

func scanWebSession(r rowScanner) (storage.WebSession, error) {
	var w storage.WebSession
	err := r.Scan(&w.ID, &w.Digest, &w.OrgID, &w.PrincipalID, &w.Method, &w.UserAgent,
		timeCol{&w.CreatedAt}, timeCol{&w.LastSeenAt}, timeCol{&w.ExpiresAt}, timeCol{&w.AuthAt}, &w.Lineage)
	return w, err
}

// CreateWebSession implements storage.SessionStore. The row is inserted
// only if the principal is enabled, in the statement that reads it: see
// enabledPrincipal.
func (s *Store) CreateWebSession(ctx context.Context, w storage.WebSession) error {
	return s.fail("create web session", execOne(ctx, s.db, `INSERT INTO web_sessions (`+webSessionColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11`+s.enabledPrincipal("$4", "$3"),
		w.ID, w.Digest, w.OrgID, w.PrincipalID, w.Method, w.UserAgent,
		s.ts(w.CreatedAt), s.ts(w.LastSeenAt), s.ts(w.ExpiresAt), s.ts(w.AuthAt), w.Lineage))
}

// enabledPrincipal is the FROM clause of an INSERT ... SELECT that stores
// a browser session or sign-in link only for an enabled principal of its
// organization (id and org are the statement's placeholders), else none,
// which execOne reports as ErrNotFound. The check and the insert are one
// statement: on PostgreSQL FOR SHARE waits for a disable being written
// (UpdatePrincipal locks the row FOR UPDATE) and then reads the row it
// committed, and a disable that comes after waits for the insert to
// commit, so its DELETE sees the row; SQLite runs a writing statement
// under the database write lock, after any disable or before it. Either
// way no session or link outlives a disable (docs/security.md A-72,
//
func (s *Store) enabledPrincipal(id, org string) string {
	q := ` FROM principals WHERE id = ` + id + ` AND org_id = ` + org + ` AND NOT disabled`
	if s.dialect == dialectPostgres {
		q += " FOR SHARE"
	}
	return q
}

// GetWebSessionByDigest implements storage.SessionStore.
func (s *Store) GetWebSessionByDigest(ctx context.Context, digest []byte) (storage.WebSession, error) {
	w, err := scanWebSession(s.db.QueryRowContext(ctx, `SELECT `+webSessionColumns+` FROM web_sessions WHERE digest = $1`, digest))
	return w, s.fail("get web session", err)
}

// GetWebSessionByLineage implements storage.SessionStore: one read by
// the lineage index (migration 0024). A chain has one session at a time:
// only the sign-in whose delete removed the old session stores the next
// one (web.SignedIn.start); the order picks one should rows written by
// hand hold two.
func (s *Store) GetWebSessionByLineage(ctx context.Context, principalID, lineage string) (storage.WebSession, error) {
	if lineage == "" {
		return storage.WebSession{}, storage.ErrNotFound
	}
	if unstorable(principalID, lineage) {
		return storage.WebSession{}, errUnstorable
	}
	w, err := scanWebSession(s.db.QueryRowContext(ctx, `SELECT `+webSessionColumns+` FROM web_sessions
		WHERE lineage = $1 AND principal_id = $2 ORDER BY expires_at DESC LIMIT 1`, lineage, principalID))
	return w, s.fail("get web session by lineage", err)
}

// TouchWebSession implements storage.SessionStore.
func (s *Store) TouchWebSession(ctx context.Context, id string, lastSeen time.Time) error {
	return s.fail("touch web session", execOne(ctx, s.db, `UPDATE web_sessions SET last_seen_at = $2 WHERE id = $1`, id, s.ts(lastSeen)))
}

// ListWebSessions implements storage.SessionStore.
func (s *Store) ListWebSessions(ctx context.Context, principalID string) ([]storage.WebSession, error) {
	return queryList(ctx, s, "list web sessions", `SELECT `+webSessionColumns+` FROM web_sessions
		WHERE principal_id = $1 ORDER BY created_at ASC NULLS FIRST, id`, scanWebSession, principalID)
}

// DeleteWebSession implements storage.SessionStore.
func (s *Store) DeleteWebSession(ctx context.Context, id string) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.fail("delete web session", execOne(ctx, s.db, `DELETE FROM web_sessions WHERE id = $1`, id))
}

// TrimWebSessions implements storage.SessionStore: one DELETE, whose
// work is the person's sessions however many are over the bound.
func (s *Store) TrimWebSessions(ctx context.Context, principalID, keepID string, keep int) (int64, error) {
	if unstorable(principalID, keepID) {
		return 0, errUnstorable
	}
	others := max(keep-1, 0)
	res, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE principal_id = $1 AND id <> $2
		AND id NOT IN (SELECT id FROM web_sessions WHERE principal_id = $1 AND id <> $2
			ORDER BY created_at DESC NULLS LAST, id DESC LIMIT $3)`, principalID, keepID, others)
	if err != nil {
		return 0, s.fail("trim web sessions", err)
	}
	n, err := res.RowsAffected()
	return n, s.fail("trim web sessions", err)
}

const loginLinkColumns = `id, org_id, principal_id, digest, created_at, expires_at`

func scanLoginLink(r rowScanner) (storage.LoginLink, error) {
	var l storage.LoginLink
	err := r.Scan(&l.ID, &l.OrgID, &l.PrincipalID, &l.Digest, timeCol{&l.CreatedAt}, timeCol{&l.ExpiresAt})
	return l, err
}

// CreateLoginLink implements storage.SessionStore; like CreateWebSession
// it inserts only for an enabled principal (enabledPrincipal).
func (s *Store) CreateLoginLink(ctx context.Context, l storage.LoginLink) error {
	return s.fail("create login link", execOne(ctx, s.db, `INSERT INTO login_links (`+loginLinkColumns+`)
		SELECT $1, $2, $3, $4, $5, $6`+s.enabledPrincipal("$3", "$2"),
		l.ID, l.OrgID, l.PrincipalID, l.Digest, s.ts(l.CreatedAt), s.ts(l.ExpiresAt)))
}

// ConsumeLoginLink implements storage.SessionStore with one DELETE ...
// RETURNING, like ConsumeExchangeToken: of concurrent callers exactly one
// gets the row.
func (s *Store) ConsumeLoginLink(ctx context.Context, digest []byte, now time.Time) (storage.LoginLink, error) {
	l, err := scanLoginLink(s.db.QueryRowContext(ctx, `DELETE FROM login_links
		WHERE digest = $1 AND expires_at > $2 RETURNING `+loginLinkColumns, digest, s.ts(now)))
	return l, s.fail("consume login link", err)
}
