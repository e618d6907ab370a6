package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/opensts/sts/internal/storage"
)

// PostgreSQL SQLSTATEs this package translates.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

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
			// The only foreign key is providers.pool_id: the pool is missing.
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
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
	}
	return err
}

// fail translates err, reports it to Config.OnError unless it is a sentinel
// or a cancellation, and prefixes op. op is a short constant ("update pat"):
// it becomes a metrics label, so it never carries IDs or token material.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	err = translate(err)
	if s.onError != nil && !errors.Is(err, storage.ErrNotFound) &&
		!errors.Is(err, storage.ErrAlreadyExists) && !errors.Is(err, context.Canceled) {
		s.onError(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
