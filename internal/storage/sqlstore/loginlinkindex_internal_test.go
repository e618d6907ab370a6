package sqlstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/ststest/pgtest"
)

// deleteLinksOfPrincipal is how disabling a principal ends its sign-in
// links (updatePrincipal, docs/security.md A-72).
const deleteLinksOfPrincipal = `DELETE FROM login_links WHERE principal_id = $1`

// TestSQLiteLoginLinksPrincipalIndex: ending a principal's sign-in links
// finds them through migration 0020's index on principal_id instead of
// reading every link, and the migration rolls back and applies again.
func TestSQLiteLoginLinksPrincipalIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	plan := func() string {
		t.Helper()
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+deleteLinksOfPrincipal, "p-1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var steps []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(steps, "; ")
	}
	if got := plan(); !strings.Contains(got, "USING INDEX login_links_principal") {
		t.Errorf("ending a principal's links: plan %q, want the principal_id index", got)
	}
	migrateDownAndUp(t, s, func() bool { return strings.Contains(plan(), "login_links_principal") })
}

// TestPostgresLoginLinksPrincipalIndex: the same index on PostgreSQL.
// With sequential scans off for the transaction, the planner uses an
// index whenever one fits, so an empty table still shows it.
func TestPostgresLoginLinksPrincipalIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: DriverPostgres, DSN: pgtest.DSN(t)})
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
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.QueryContext(ctx, "EXPLAIN "+deleteLinksOfPrincipal, "p-1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var steps []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, strings.TrimSpace(line))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(steps, "; ")
	}
	if got := plan(); !strings.Contains(got, "login_links_principal") {
		t.Errorf("ending a principal's links: plan %q, want the principal_id index", got)
	}
	migrateDownAndUp(t, s, func() bool { return strings.Contains(plan(), "login_links_principal") })
}

// migrateDownAndUp rolls migration 0020 back, checks that indexed then
// reports false, and applies it again.
func migrateDownAndUp(t *testing.T, s *Store, indexed func() bool) {
	t.Helper()
	ctx := context.Background()
	p, done, err := s.provider()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, err := p.DownTo(ctx, 19); err != nil {
		t.Fatalf("rolling back to 0019: %v", err)
	}
	if indexed() {
		t.Error("after rolling back 0020 the index is still used")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("applying 0020 again: %v", err)
	}
	if !indexed() {
		t.Error("after applying 0020 again the index is not used")
	}
}
