package signer_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// backend opens a fresh, migrated store of one kind.
type backend struct {
	name string
	open func(t *testing.T) storage.Store
}

// backends are SQLite always, and PostgreSQL when STS_TEST_POSTGRES_DSN is
// set (in CI it must be: a silent skip would hide the only real PostgreSQL
// coverage).
var backends = []backend{
	{"sqlite", newSQLiteStore},
	{"postgres", newPostgresStore},
}

func newSQLiteStore(t *testing.T) storage.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sts.db")
	sqlitetest.WriteMigrated(t, path)
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
}

func newPostgresStore(t *testing.T) storage.Store {
	t.Helper()
	dsn := os.Getenv("STS_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("STS_TEST_POSTGRES_DSN is not set; CI must run the PostgreSQL tests")
		}
		t.Skip("STS_TEST_POSTGRES_DSN is not set; to run this test set it to a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := "sts_signer_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: u.String()})
}

func openMigrated(t *testing.T, c sqlstore.Config) storage.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), c)
	if err != nil {
		t.Fatalf("sqlstore.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// forEachBackend runs f as a subtest on every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, store storage.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}
