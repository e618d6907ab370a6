package sqlstore

import (
	"context"
	"testing"
	"time"
)

// TestMigration0024DownAndUp: 0024 rolls back to 0023 and applies again
// on SQLite and PostgreSQL. A code stored meanwhile reads as issued in no
// session: the family it begins outlives every session, as before; a
// session stored meanwhile is its own lineage, so the families begun in
// it after the upgrade end with it (docs/security.md ).
func TestMigration0024DownAndUp(t *testing.T) {
	t.Parallel()
	migrationDownUp(t, 24, func(t *testing.T, ctx context.Context, s *Store) {
		if _, err := s.db.ExecContext(ctx, `SELECT session_lineage FROM auth_codes`); err == nil {
			t.Error("auth_codes.session_lineage still there after rolling back 0024")
		}
		if _, err := s.db.ExecContext(ctx, `SELECT lineage FROM web_sessions`); err == nil {
			t.Error("web_sessions.lineage still there after rolling back 0024")
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (id, digest) VALUES ('before', $1)`, []byte("digest")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO web_sessions (id, digest, principal_id) VALUES ('session-before', $1, 'p')`, []byte("digest")); err != nil {
			t.Fatal(err)
		}
	}, func(t *testing.T, ctx context.Context, s *Store) {
		c, err := s.ConsumeAuthCode(ctx, []byte("digest"), time.Now(), "", "")
		if err != nil || c.ID != "before" || c.SessionLineage != "" {
			t.Errorf("code stored before 0024 = %+v, %v; want it, naming no session", c, err)
		}
		w, err := s.GetWebSessionByLineage(ctx, "p", "session-before")
		if err != nil || w.ID != "session-before" {
			t.Errorf("session stored before 0024 by its own lineage = %+v, %v; want it", w, err)
		}
	})
}
