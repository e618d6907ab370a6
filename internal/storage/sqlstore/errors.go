package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/opensts/sts/internal/storage"
)

// PostgreSQL SQLSTATEs this package translates.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgReadOnlyTransaction = "25006" // read_only_sql_transaction: a read-only session or a hot standby
	pgDiskFull            = "53100"
)

// PostgreSQL SQLSTATEs of a connection refused for a reason retrying cannot
// fix: the database or role does not exist, or the password is wrong.
var pgPermanent = map[string]bool{
	"3D000": true, // invalid_catalog_name: no such database
	"28000": true, // invalid_authorization_specification: no such role, pg_hba rejects
	"28P01": true, // invalid_password
}

// ErrBadDSN is returned by Open for a PostgreSQL connection string that
// cannot be parsed. Its text never repeats the DSN, which may hold a
// password.
var ErrBadDSN = errors.New("storage.dsn is not a valid PostgreSQL connection string (want a URL such as postgres://user@host:5432/dbname?sslmode=verify-full, or key=value pairs)")

// Permanent reports whether err, from opening or first using the store,
// is one retrying cannot fix: an unparseable DSN, an unknown database or
// role, a rejected password. Anything else (the server unreachable,
// starting up, out of connections) may pass.
func Permanent(err error) bool {
	if errors.Is(err, ErrBadDSN) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgPermanent[pgErr.Code]
}

// PermanentReason is the one-line reason of a [Permanent] error: the
// server's message and SQLSTATE, without the host, user and database the
// driver's wrapping adds.
func PermanentReason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Sprintf("PostgreSQL refused the connection: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	return err.Error()
}

// translate maps a backend error to a storage sentinel where one applies,
// keeping the backend error in the chain for logs. This is the only place
// driver errors are interpreted.
func translate(err error) error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgUniqueViolation:
			return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
		case pgForeignKeyViolation:
			// A foreign key's row is missing: a provider's pool, an
			// upstream identity's principal.
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		case pgReadOnlyTransaction:
			return fmt.Errorf("%w: %w", storage.ErrReadOnly, err)
		case pgDiskFull:
			return fmt.Errorf("%w: %w", storage.ErrFull, err)
		}
		return err
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		}
		// The primary code, whatever the extended one
		// (SQLITE_READONLY_DBMOVED, …).
		switch liteErr.Code() & 0xff {
		case sqlite3.SQLITE_READONLY:
			return fmt.Errorf("%w: %w", storage.ErrReadOnly, err)
		case sqlite3.SQLITE_FULL:
			return fmt.Errorf("%w: %w", storage.ErrFull, err)
		}
	}
	return err
}

// waitedOut reports whether err is a wait that ran out rather than a
// refusal: SQLite's busy_timeout behind another connection's write lock
// (SQLITE_BUSY), PostgreSQL's statement_timeout (57014) or lock_timeout
// (55P03).
func waitedOut(err error) bool {
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code()&0xff == sqlite3.SQLITE_BUSY
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "57014" || pgErr.Code == "55P03")
}

// WaitedOut reports whether err, from this package, is a wait behind
// another connection's lock that ran out (see waitedOut), for callers that
// explain it.
func WaitedOut(err error) bool { return waitedOut(err) }

// fail translates err, reports it to Config.OnError unless it is a sentinel
// or a cancellation, and prefixes op. op is a short constant ("update pat"):
// it becomes a metrics label, so it never carries IDs or token material.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	err = translate(err)
	if errors.Is(err, storage.ErrFull) {
		s.fullAt.Store(time.Now().UnixNano())
	}
	if s.onError != nil && !errors.Is(err, storage.ErrNotFound) &&
		!errors.Is(err, storage.ErrAlreadyExists) && !errors.Is(err, context.Canceled) {
		s.onError(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unstorable reports whether a key holds what no stored text can: a NUL
// character (PostgreSQL refuses it in text, SQLSTATE 22021) or bytes
// that are not UTF-8. A Get, Update or Delete by such a key finds nothing
// (errUnstorable), on both backends, without asking the database, where
// PostgreSQL's refusal was a storage failure (a 503 for any client_id or
// /tokens/{id} someone sends; docs/security.md T-108). Writes of such
// values are not translated: the services refuse them first.
func unstorable(keys ...string) bool {
	for _, k := range keys {
		if strings.IndexByte(k, 0) >= 0 || !utf8.ValidString(k) {
			return true
		}
	}
	return false
}

// errUnstorable is the answer to a lookup by a key no row can hold.
var errUnstorable = fmt.Errorf("%w: the key holds a NUL character or is not UTF-8", storage.ErrNotFound)
