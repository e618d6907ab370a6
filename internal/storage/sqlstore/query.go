package sqlstore

import (
	"context"
	"database/sql"

	"github.com/opensts/sts/internal/storage"
)

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// update is the body of every Update*: in one transaction, read the row
// (locked), apply fn, write the result back. An error from fn rolls back
// and is returned wrapped; the row is unchanged. write keys the row by the
// original key, so an updater cannot move a row to another ID.
//
// in, when not nil, is a unit of work's transaction (storage.Tx): the
// update runs in it, and commits with it.
func update[T any](ctx context.Context, s *Store, in *sql.Tx, op, selectQuery string, key []any,
	scan func(rowScanner) (T, error), fn func(T) (T, error), write func(*sql.Tx, T) error,
) error {
	body := func(tx *sql.Tx) error {
		old, err := scan(tx.QueryRowContext(ctx, selectQuery+s.forUpdate(), key...))
		if err != nil {
			return s.fail(op, err)
		}
		next, err := fn(old)
		if err != nil {
			return err // the caller's own error, returned as is
		}
		if err := write(tx, next); err != nil {
			return s.fail(op, err)
		}
		return nil
	}
	if in != nil {
		return body(in)
	}
	return s.inTx(ctx, op, body)
}

// execOne runs a statement that must change exactly one row; zero rows
// changed means the row does not exist.
func execOne(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// queryList runs a query and scans every row.
func queryList[T any](ctx context.Context, s *Store, op, query string, scan func(rowScanner) (T, error), args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	return collect(s, op, rows, err, scan)
}

// collect scans every row of a query that returned rows, err.
func collect[T any](s *Store, op string, rows *sql.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// txList is queryList inside a transaction; errors are returned raw.
func txList[T any](ctx context.Context, tx *sql.Tx, query string, scan func(rowScanner) (T, error), args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// prepared returns the statement for query, prepared on first use and kept
// for the life of the Store (database/sql re-prepares it on each pooled
// connection as needed). Only hot, fixed queries use it: it saves SQLite
// from parsing the SQL on every call. A failed prepare (the database is
// not up yet) is not remembered.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}
