package sqlstore_test

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/conformance"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// postgresDSN returns STS_TEST_POSTGRES_DSN, skipping the test when it is
// unset, except in CI, where a silent skip would hide the only real
// PostgreSQL coverage.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("STS_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("STS_TEST_POSTGRES_DSN is not set; CI must run the PostgreSQL backend tests")
		}
		t.Skip("STS_TEST_POSTGRES_DSN is not set")
	}
	return dsn
}

// withSearchPath returns dsn with search_path set, for URL and
// keyword/value DSNs; pgx sends unknown parameters as run-time settings.
func withSearchPath(t *testing.T, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("STS_TEST_POSTGRES_DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// newPostgresSchema creates a fresh schema, dropped at cleanup, and returns
// a DSN whose search_path points at it.
func newPostgresSchema(t *testing.T) string {
	t.Helper()
	dsn := postgresDSN(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	// rand.Text is base32 (A-Z, 2-7): lowercased, a valid bare identifier.
	schema := "sts_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return withSearchPath(t, dsn, schema)
}

func newPostgres(t *testing.T) storage.Store {
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
}

func TestPostgresConformance(t *testing.T) {
	postgresDSN(t)
	conformance.RunTests(t, newPostgres)
}

func TestPostgresConcurrency(t *testing.T) {
	postgresDSN(t)
	conformance.RunConcurrencyTests(t, newPostgres)
}

func TestPostgresSmoke(t *testing.T) {
	s := newPostgres(t)
	t.Cleanup(func() { s.Close() })
	smoke(t, s)
}

func TestPostgresHealthNeedsMigration(t *testing.T) {
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	healthNeedsMigration(t, s)
}

// TestPostgresOpenIsLazy needs no server: Open must succeed while the
// database is unreachable, and Health and Migrate must fail (and report
// through OnError) rather than hang.
func TestPostgresOpenIsLazy(t *testing.T) {
	var (
		mu  sync.Mutex
		ops []string
	)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{
		Driver: sqlstore.DriverPostgres,
		// Port 1 on loopback refuses at once.
		DSN: "postgres://sts@127.0.0.1:1/sts?sslmode=disable&connect_timeout=2",
		OnError: func(op string, err error) {
			mu.Lock()
			defer mu.Unlock()
			ops = append(ops, op)
		},
	})
	if err != nil {
		t.Fatalf("Open with an unreachable server = %v, want nil", err)
	}
	defer s.Close()
	if err := s.Health(t.Context()); err == nil {
		t.Error("Health with an unreachable server = nil, want an error")
	}
	if err := s.Migrate(t.Context()); err == nil {
		t.Error("Migrate with an unreachable server = nil, want an error")
	}
	mu.Lock()
	n := len(ops)
	mu.Unlock()
	if n == 0 {
		t.Error("OnError was not called for backend errors")
	}
	if _, err := s.GetPAT(t.Context(), "x"); errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetPAT with an unreachable server = %v, must not look like not found", err)
	}
}
