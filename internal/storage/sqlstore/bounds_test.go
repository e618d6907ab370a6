package sqlstore_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestPostgresStatementTimeout (docs/security.md F-40): every connection
// carries the configured statement_timeout, so the server itself ends a
// statement (or a lock wait) that runs longer; a timeout the DSN names
// wins.
func TestPostgresStatementTimeout(t *testing.T) {
	dsn := newPostgresSchema(t)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn,
		StatementTimeout: 300 * time.Millisecond, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got string
	if err := s.DB().QueryRowContext(t.Context(), "SHOW statement_timeout").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "300ms" {
		t.Errorf("statement_timeout = %q, want 300ms", got)
	}
	start := time.Now()
	if _, err := s.DB().ExecContext(t.Context(), "SELECT pg_sleep(5)"); err == nil {
		t.Error("a 5 s statement succeeded under a 300 ms statement_timeout")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the statement ended after %s", took)
	}

	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return // keyword/value DSN: the URL override case is covered in CI
	}
	q := u.Query()
	q.Set("statement_timeout", "4000")
	u.RawQuery = q.Encode()
	s2, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: u.String(), StatementTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.DB().QueryRowContext(t.Context(), "SHOW statement_timeout").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "4s" {
		t.Errorf("statement_timeout with the DSN naming 4000 = %q, want 4s", got)
	}
}
