package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const revocationColumns = `id, issued_before, reason, created_at, expires_at`

func scanRevocation(r rowScanner) (storage.Revocation, error) {
	var v storage.Revocation
	err := r.Scan(&v.ID, timeCol{&v.IssuedBefore}, &v.Reason, timeCol{&v.CreatedAt}, timeCol{&v.ExpiresAt})
	return v, err
}

// later is the SQL for the later of the stored and the new value of a time
// column, NULL (the zero time) counting as the earliest. It is spelled out
// because SQLite's MAX() returns NULL when either side is NULL while
// PostgreSQL's GREATEST() ignores NULLs.
func later(col string) string {
	return `CASE WHEN excluded.` + col + ` IS NULL THEN revocations.` + col +
		` WHEN revocations.` + col + ` IS NULL OR excluded.` + col + ` > revocations.` + col +
		` THEN excluded.` + col + ` ELSE revocations.` + col + ` END`
}

// putRevocation keeps the later IssuedBefore and ExpiresAt of the two, so a
// second revocation never shortens the first. CreatedAt also moves forward
// when the revocation is widened, so caches that catch up with
// ListRevocations(since) see the change; Reason is the newest.
var putRevocation = `INSERT INTO revocations (` + revocationColumns + `) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (id) DO UPDATE SET
		issued_before = ` + later("issued_before") + `,
		reason = excluded.reason,
		created_at = ` + later("created_at") + `,
		expires_at = ` + later("expires_at")

// PutRevocation implements storage.RevocationStore.
func (s *Store) PutRevocation(ctx context.Context, r storage.Revocation) error {
	return s.putRevocation(ctx, s.db, r)
}

func (s *Store) putRevocation(ctx context.Context, db execer, r storage.Revocation) error {
	_, err := db.ExecContext(ctx, putRevocation,
		r.ID, s.ts(r.IssuedBefore), r.Reason, s.ts(r.CreatedAt), s.ts(r.ExpiresAt))
	return s.fail("put revocation", err)
}

// GetRevocation implements storage.RevocationStore.
func (s *Store) GetRevocation(ctx context.Context, id string) (storage.Revocation, error) {
	r, err := scanRevocation(s.db.QueryRowContext(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE id = $1`, id))
	return r, s.fail("get revocation", err)
}

// getRevocationPair is the hot query of every access-token check (the
// token's jti row and its subject row), prepared once per connection.
const getRevocationPair = `SELECT ` + revocationColumns + ` FROM revocations WHERE id IN ($1, $2)`

// GetRevocations implements storage.RevocationStore: one primary-key
// lookup for up to two IDs (a prepared statement), one IN query otherwise.
func (s *Store) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	const op = "get revocations"
	switch len(ids) {
	case 0:
		return nil, nil
	case 1:
		ids = append(ids, ids[0])
		fallthrough
	case 2:
		stmt, err := s.prepared(ctx, getRevocationPair)
		if err != nil {
			return nil, s.fail(op, err)
		}
		rows, err := stmt.QueryContext(ctx, ids[0], ids[1])
		return collect(s, op, rows, err, scanRevocation)
	}
	args := make([]any, len(ids))
	marks := make([]string, len(ids))
	for i, id := range ids {
		args[i], marks[i] = id, "$"+strconv.Itoa(i+1)
	}
	return queryList(ctx, s, op, `SELECT `+revocationColumns+` FROM revocations WHERE id IN (`+
		strings.Join(marks, ", ")+`)`, scanRevocation, args...)
}

// ListRevocations implements storage.RevocationStore. A zero since lists
// every row, including rows with a zero CreatedAt.
func (s *Store) ListRevocations(ctx context.Context, since time.Time) ([]storage.Revocation, error) {
	const op = "list revocations"
	if since.IsZero() {
		return queryList(ctx, s, op, `SELECT `+revocationColumns+` FROM revocations
			ORDER BY created_at ASC NULLS FIRST, id`, scanRevocation)
	}
	return queryList(ctx, s, op, `SELECT `+revocationColumns+` FROM revocations
		WHERE created_at >= $1 ORDER BY created_at, id`, scanRevocation, s.ts(since))
}
