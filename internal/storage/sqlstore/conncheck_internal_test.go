package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestConnectionCheckRefusedIsNotFatal (docs/security.md F-91):
// PostgreSQL refuses a non-zero client_connection_check_interval where it
// cannot tell that a socket closed (Windows; 14 on a system without
// POLLRDHUP), with "must be set to 0 on this platform". That refusal ends
// the SET, not the connection: the connection is used without the check,
// and the first refusal is logged once with its reason. An error that is
// not the server's answer (the connection failed) still fails the
// connection.
func TestConnectionCheckRefusedIsNotFatal(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	c := &connectionCheck{every: time.Second, logger: slog.New(slog.NewTextHandler(&logs, nil))}
	refused := &pgconn.PgError{Severity: "ERROR", Code: "22023",
		Message: `invalid value for parameter "client_connection_check_interval": 1000`,
		Detail:  "client_connection_check_interval must be set to 0 on this platform."}
	var sent []string
	exec := func(_ context.Context, sql string) error { sent = append(sent, sql); return refused }
	for i := range 3 {
		if err := c.set(t.Context(), "17.2 (Debian 17.2-1)", exec); err != nil {
			t.Fatalf("connection %d: the server refused the check (%v) and the connection failed", i+1, err)
		}
	}
	if len(sent) != 3 || sent[0] != "SET client_connection_check_interval = 1000" {
		t.Errorf("statements sent: %q", sent)
	}
	out := logs.String()
	if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "must be set to 0 on this platform") {
		t.Errorf("want one warning with the server's reason, logged:\n%s", out)
	}

	broken := errors.New("write: connection reset by peer")
	if err := c.set(t.Context(), "17.2", func(context.Context, string) error { return broken }); !errors.Is(err, broken) {
		t.Errorf("a connection that failed during the SET: got %v, want %v", err, broken)
	}
	if err := c.set(t.Context(), "13.9", func(context.Context, string) error { return refused }); err != nil {
		t.Errorf("PostgreSQL 13 (no such parameter, no SET): %v", err)
	}
}
