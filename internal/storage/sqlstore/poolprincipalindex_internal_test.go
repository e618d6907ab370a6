package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/ststest/pgtest"
)

// listPoolsOfPrincipal is ListPoolsOfPrincipal's query (trust.go): a
// principal's deletion reads it to refuse one pools still issue tokens to
// (docs/security.md A-86).
const listPoolsOfPrincipal = `SELECT id FROM pools WHERE principal_id = $1 ORDER BY id`

// TestPoolsPrincipalIndex: the pools bound to a principal are found
// through migration 0021's index on pools.principal_id instead of reading
// every pool, on SQLite and PostgreSQL, and the migration rolls back and
// applies again. On PostgreSQL sequential scans are off for the plan's
// transaction, so the planner uses an index whenever one fits and an
// empty table still shows it.
func TestPoolsPrincipalIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	backends := map[string]struct {
		cfg     func(t *testing.T) Config
		explain string
		prepare string
	}{
		"sqlite": {func(t *testing.T) Config {
			return Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")}
		}, "EXPLAIN QUERY PLAN ", ""},
		"postgres": {func(t *testing.T) Config {
			return Config{Driver: DriverPostgres, DSN: pgtest.DSN(t)}
		}, "EXPLAIN ", "SET LOCAL enable_seqscan = off"},
	}
	for name, b := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(ctx, b.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			plan := func() string {
				t.Helper()
				tx, err := s.db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if b.prepare != "" {
					if _, err := tx.ExecContext(ctx, b.prepare); err != nil {
						t.Fatal(err)
					}
				}
				return planOf(t, tx, b.explain+listPoolsOfPrincipal, "p-1")
			}
			if got := plan(); !strings.Contains(got, "pools_principal") {
				t.Errorf("listing a principal's pools: plan %q, want the principal_id index", got)
			}
			p, done, err := s.provider()
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			if _, err := p.DownTo(ctx, 20); err != nil {
				t.Fatalf("rolling back to 0020: %v", err)
			}
			if got := plan(); strings.Contains(got, "pools_principal") {
				t.Errorf("after rolling back 0021 the plan %q still uses the index", got)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("applying 0021 again: %v", err)
			}
			if got := plan(); !strings.Contains(got, "pools_principal") {
				t.Errorf("after applying 0021 again the plan %q does not use the index", got)
			}
		})
	}
}

// planOf runs an EXPLAIN in tx and joins its text: SQLite's EXPLAIN QUERY
// PLAN has four columns (the detail last), PostgreSQL's EXPLAIN one.
func planOf(t *testing.T, tx *sql.Tx, query string, args ...any) string {
	t.Helper()
	rows, err := tx.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		switch v := vals[len(vals)-1].(type) {
		case string:
			steps = append(steps, strings.TrimSpace(v))
		case []byte:
			steps = append(steps, strings.TrimSpace(string(v)))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "; ")
}
