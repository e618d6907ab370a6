package sqlstore

import (
	"context"
	"testing"
	"time"
)

// TestMigration0023DownAndUp: 0023 rolls back to 0022 and applies again
// on SQLite and PostgreSQL, and a code stored meanwhile, which asked for
// no resource, reads as covering none.
func TestMigration0023DownAndUp(t *testing.T) {
	t.Parallel()
	migrationDownUp(t, 23, func(t *testing.T, ctx context.Context, s *Store) {
		if _, err := s.db.ExecContext(ctx, `SELECT resources FROM auth_codes`); err == nil {
			t.Error("resources still there after rolling back 0023")
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (id, digest) VALUES ('before', $1)`, []byte("digest")); err != nil {
			t.Fatal(err)
		}
	}, func(t *testing.T, ctx context.Context, s *Store) {
		c, err := s.ConsumeAuthCode(ctx, []byte("digest"), time.Now(), "", "")
		if err != nil || c.ID != "before" || c.Resources != nil {
			t.Errorf("code stored before 0023 = %+v, %v; want it, with no resources", c, err)
		}
	})
}
