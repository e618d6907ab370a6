package sqlstore_test

import (
	"net/url"
	"strings"
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

// TestPostgresMigrateOutlivesStatementTimeout: a migration is not a
// request. statement_timeout bounds what a request waits for, but a
// migration that builds an index over a large table may rightly take
// minutes; under the 10 s default such an upgrade failed at every start
// (and under load the test schema's own migrations failed at 200 ms).
// Migrations run with statement_timeout off on a pool of their own,
// closed afterwards, so the request pool keeps its bound
// (docs/reliability.md, "Bounded storage calls").
func TestPostgresMigrateOutlivesStatementTimeout(t *testing.T) {
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t),
		StatementTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate under a 1 ms statement_timeout: %v", err)
	}
	// Every connection of the request pool still carries the bound. The
	// SHOW runs under it too, so on a loaded machine it may itself be
	// cancelled (57014): asked again, a bounded number of times.
	conns := make([]string, 0, 4)
	for range 4 {
		c, err := s.DB().Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var got string
		for attempt := 0; ; attempt++ {
			err := c.QueryRowContext(t.Context(), "SHOW statement_timeout").Scan(&got)
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "57014") || attempt == 200 {
				t.Fatal(err)
			}
		}
		conns = append(conns, got)
	}
	for i, got := range conns {
		if got != "1ms" {
			t.Errorf("pooled connection %d after Migrate: statement_timeout = %q, want 1ms", i, got)
		}
	}
}
