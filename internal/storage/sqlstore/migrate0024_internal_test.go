package sqlstore

import (
	"context"
	"testing"
	"time"
)

// TestMigration0024DownAndUp: 0024 rolls back to 0023 and applies again
// on SQLite and PostgreSQL, and a code stored meanwhile reads as issued
// in no session: the family it begins outlives every session, as before
// (docs/security.md A-99).
func TestMigration0024DownAndUp(t *testing.T) {
	migrationDownUp(t, 24, func(t *testing.T, ctx context.Context, s *Store) {
		if _, err := s.db.ExecContext(ctx, `SELECT session_id FROM auth_codes`); err == nil {
			t.Error("session_id still there after rolling back 0024")
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (id, digest) VALUES ('before', $1)`, []byte("digest")); err != nil {
			t.Fatal(err)
		}
	}, func(t *testing.T, ctx context.Context, s *Store) {
		c, err := s.ConsumeAuthCode(ctx, []byte("digest"), time.Now(), "", "")
		if err != nil || c.ID != "before" || c.SessionID != "" {
			t.Errorf("code stored before 0024 = %+v, %v; want it, naming no session", c, err)
		}
	})
}
