// Package pgtest gives each test its own PostgreSQL schema. It is a test
// kit with no dependency on the rest of sts, so tests inside any package
// (cli's included, which ststest itself imports) can use it.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// DSN returns STS_TEST_POSTGRES_DSN with search_path set to a fresh
// schema that is dropped when the test ends. It skips the test when the
// variable is unset, and fails it instead when CI=true, so CI cannot pass
// without exercising PostgreSQL.
func DSN(t testing.TB) string {
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
		t.Fatalf("pgtest: STS_TEST_POSTGRES_DSN: %v", err)
	}
	// rand.Text is base32 (A-Z, 2-7): lowercased, a valid bare identifier.
	schema := "sts_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: STS_TEST_POSTGRES_DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
