package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestMigration0023DownAndUp: 0023 rolls back to 0022 and applies again
// on SQLite and PostgreSQL, and a code stored meanwhile, which asked for
// no resource, reads as covering none.
func TestMigration0023DownAndUp(t *testing.T) {
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
			if _, err := p.DownTo(ctx, 22); err != nil {
				t.Fatalf("rolling back to 0022: %v", err)
			}
			if _, err := s.db.ExecContext(ctx, `SELECT resources FROM auth_codes`); err == nil {
				t.Error("resources still there after rolling back 0023")
			}
			if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (id, digest) VALUES ('before', $1)`, []byte("digest")); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("applying 0023 again: %v", err)
			}
			c, err := s.ConsumeAuthCode(ctx, []byte("digest"), time.Now(), "", "")
			if err != nil || c.ID != "before" || c.Resources != nil {
				t.Errorf("code stored before 0023 = %+v, %v; want it, with no resources", c, err)
			}
		})
	}
}
