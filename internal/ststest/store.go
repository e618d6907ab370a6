package ststest

import (
	"path/filepath"
	"testing"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// NewStore returns a migrated SQLite store on a file in t.TempDir(),
// closed when the test ends. A file rather than ":memory:" so the store
// behaves like production SQLite: several pooled connections, WAL, real
// write locking.
func NewStore(t testing.TB) storage.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{
		Driver: sqlstore.DriverSQLite,
		DSN:    filepath.Join(t.TempDir(), "sts.db"),
	})
	if err != nil {
		t.Fatalf("ststest: open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("ststest: close store: %v", err)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("ststest: migrate store: %v", err)
	}
	return s
}
