package sqlstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/opensts/sts/internal/ststest/pgtest"
)

// migrationDownUp runs one migration's "rolls back and applies again"
// test on SQLite and PostgreSQL: a store migrated to the newest version
// is rolled back to migration n-1 and handed to down, then migrated again
// and handed to up.
func migrationDownUp(t *testing.T, n int64, down, up func(t *testing.T, ctx context.Context, s *Store)) {
	t.Helper()
	ctx := context.Background()
	for name, cfg := range map[string]func(t *testing.T) Config{
		"sqlite": func(t *testing.T) Config {
			return Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")}
		},
		"postgres": func(t *testing.T) Config { return Config{Driver: DriverPostgres, DSN: pgtest.DSN(t)} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
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
			if _, err := p.DownTo(ctx, n-1); err != nil {
				t.Fatalf("rolling back to %04d: %v", n-1, err)
			}
			down(t, ctx, s)
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("applying %04d again: %v", n, err)
			}
			up(t, ctx, s)
		})
	}
}
