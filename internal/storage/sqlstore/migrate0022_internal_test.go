package sqlstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestMigration0022DownAndUp: 0022 rolls back to 0021 and applies
// again on SQLite and PostgreSQL, and the new columns read as NULL.
func TestMigration0022DownAndUp(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]func(t *testing.T) Config{
		"sqlite": func(t *testing.T) Config {
			return Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")}
		},
		"postgres": func(t *testing.T) Config { return Config{Driver: DriverPostgres, DSN: pgtest.DSN(t)} },
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(ctx, cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			p, done, err := s.provider()
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			if _, err := p.DownTo(ctx, 21); err != nil {
				t.Fatalf("rolling back to 0021: %v", err)
			}
			if _, err := s.db.ExecContext(ctx, `SELECT auth_at FROM web_sessions`); err == nil {
				t.Error("auth_at still there after rolling back 0022")
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("applying 0022 again: %v", err)
			}
			for _, q := range []string{`SELECT auth_at FROM web_sessions`, `SELECT signed_in_at FROM auth_codes`} {
				if _, err := s.db.ExecContext(ctx, q); err != nil {
					t.Errorf("%s: %v", q, err)
				}
			}
		})
	}
}
