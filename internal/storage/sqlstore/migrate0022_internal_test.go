package sqlstore

import (
	"context"
	"testing"
)

// TestMigration0022DownAndUp: 0022 rolls back to 0021 and applies
// again on SQLite and PostgreSQL, and the new columns read as NULL.
func TestMigration0022DownAndUp(t *testing.T) {
	t.Parallel()
	migrationDownUp(t, 22, func(t *testing.T, ctx context.Context, s *Store) {
		if _, err := s.db.ExecContext(ctx, `SELECT auth_at FROM web_sessions`); err == nil {
			t.Error("auth_at still there after rolling back 0022")
		}
	}, func(t *testing.T, ctx context.Context, s *Store) {
		for _, q := range []string{`SELECT auth_at FROM web_sessions`, `SELECT signed_in_at FROM auth_codes`} {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
}
