package ststest

import (
	"testing"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// NewStore returns a migrated SQLite store on a file in t.TempDir(),
// closed when the test ends; see [sqlitetest.NewStore].
func NewStore(t testing.TB) storage.Store {
	t.Helper()
	return sqlitetest.NewStore(t)
}

// WriteMigratedSQLite writes at path (mode 0600) a SQLite database that
// every migration has run on; see [sqlitetest.WriteMigrated].
func WriteMigratedSQLite(t testing.TB, path string) {
	t.Helper()
	sqlitetest.WriteMigrated(t, path)
}
