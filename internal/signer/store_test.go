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
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
}

// newPostgresSchema creates a fresh schema, dropped at the end of the
// test, and returns the DSN that uses it: every Store opened on it shares
// one database, as replicas do.
func newPostgresSchema(t *testing.T) string {
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
	return u.String()
}

// sharedStores opens two Stores of one kind on one database, as two
// replicas (or a replica and the CLI) do: a SQLite file opened twice, or
// one PostgreSQL schema.
func sharedStores(t *testing.T, kind string) (storage.Store, storage.Store) {
	t.Helper()
	var c sqlstore.Config
	switch kind {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "sts.db")
		sqlitetest.WriteMigrated(t, path)
		c = sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path}
	default:
		c = sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)}
	}
	return openMigrated(t, c), openMigrated(t, c)
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
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.open(t))
		})
	}
}
