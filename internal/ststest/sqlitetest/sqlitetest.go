// Package sqlitetest gives tests a migrated SQLite store without running
// the migrations each time: every store starts as a copy of one database
// migrated once per test binary. It depends on nothing in sts but
// internal/storage/sqlstore, so the tests of the packages ststest cannot
// serve (api, grants and the others that app imports) can use it too.
package sqlitetest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opensts/sts/internal/storage/sqlstore"
)

// NewStore returns a migrated SQLite store on a file in t.TempDir(),
// closed when the test ends. A file rather than ":memory:" so the store
// behaves like production SQLite: several pooled connections, WAL, real
// write locking.
func NewStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	return Open(t, sqlstore.Config{})
}

// Open is [NewStore] with c's options (OnError, pool sizes); Driver and DSN
// are set here, to SQLite on a fresh file in t.TempDir() that starts as a
// migrated copy.
func Open(t testing.TB, c sqlstore.Config) *sqlstore.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sts.db")
	WriteMigrated(t, path)
	c.Driver, c.DSN = sqlstore.DriverSQLite, path
	s, err := sqlstore.Open(t.Context(), c)
	if err != nil {
		t.Fatalf("sqlitetest: open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sqlitetest: close store: %v", err)
		}
	})
	// The copy is at the newest version, so this finds nothing to do; it
	// stays so that a store from here is always one Migrate accepts.
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("sqlitetest: migrate store: %v", err)
	}
	return s
}

// WriteMigrated writes at path (mode 0600) a SQLite database that every
// migration has run on: a copy of one migrated once per test binary, since
// running the migrations costs more than most tests that need a store.
func WriteMigrated(t testing.TB, path string) {
	t.Helper()
	template.once.Do(buildTemplate)
	if template.err != nil {
		t.Fatalf("sqlitetest: migrated SQLite template: %v", template.err)
	}
	if err := os.WriteFile(path, template.db, 0o600); err != nil {
		t.Fatalf("sqlitetest: write migrated SQLite: %v", err)
	}
}

var template struct {
	once sync.Once
	db   []byte
	err  error
}

func buildTemplate() {
	dir, err := os.MkdirTemp("", "sts-sqlite-template")
	if err != nil {
		template.err = err
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sts.db")
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		template.err = err
		return
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		template.err = err
		return
	}
	// Closing the last connection checkpoints the WAL into the file.
	if template.err = s.Close(); template.err != nil {
		return
	}
	template.db, template.err = os.ReadFile(path)
}
