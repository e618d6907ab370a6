package sqlstore_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestPostgresDSNOptionsWin (docs/security.md F-91, docs/configuration.md):
// a session parameter the DSN names keeps the DSN's value, whether named
// as a keyword or, as libpq documents, in options ("-c name=value",
// "--name=value"). Named in options, the pool's own statement_timeout,
// idle_in_transaction_session_timeout (startup parameters, which the
// server applies after options) and client_connection_check_interval
// (SET after connect) replaced it.
func TestPostgresDSNOptionsWin(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"statement_timeout":                   "7s",
		"idle_in_transaction_session_timeout": "0",
		"client_connection_check_interval":    "0",
	}
	for _, tc := range []struct {
		name  string
		extra url.Values
	}{
		{"keyword", url.Values{"statement_timeout": {"7000"}, "idle_in_transaction_session_timeout": {"0"}, "client_connection_check_interval": {"0"}}},
		{"options -c", url.Values{"options": {"-c statement_timeout=7000 -c idle_in_transaction_session_timeout=0 -cclient_connection_check_interval=0"}}},
		{"options --", url.Values{"options": {"--statement-timeout=7000 --idle_in_transaction_session_timeout=0 --client-connection-check-interval=0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(newPostgresSchema(t))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			for k, v := range tc.extra {
				q[k] = v
			}
			u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
			s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: u.String(),
				ConnectTimeout: time.Second, StatementTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for p, w := range want {
				var v string
				if err := s.DB().QueryRowContext(t.Context(), "SHOW "+p).Scan(&v); err != nil {
					t.Fatal(err)
				}
				if v != w {
					t.Errorf("the DSN names %s = %s, the session has %s", p, w, v)
				}
			}
		})
	}
}
