package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// readOnlyFault makes the store's only connection read-only the way the
// database itself does (SQLite: PRAGMA query_only, whose writes fail with
// SQLITE_READONLY; PostgreSQL: a read-only session, whose writes fail with
// SQLSTATE 25006 as on a hot standby) and back.
type readOnlyFault struct {
	driver string
	on     string
	off    string
}

var readOnlyFaults = []readOnlyFault{
	{sqlstore.DriverSQLite, "PRAGMA query_only = ON", "PRAGMA query_only = OFF"},
	{sqlstore.DriverPostgres, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"},
}

// TestReadyzReportsReadOnlyStorage turns real SQLite and PostgreSQL
// read-only under a running server: reads still work, so the "storage"
// check passes, but /readyz must answer 503 naming storage_write with the
// reason class alone, and 200 again once writes work.
// (Not parallel: it bounds how soon the write probe reports.)
func TestReadyzReportsReadOnlyStorage(t *testing.T) {
	for _, f := range readOnlyFaults {
		t.Run(f.driver, func(t *testing.T) {
			c := sqlstore.Config{Driver: f.driver, MaxConns: 1}
			if f.driver == sqlstore.DriverPostgres {
				c.DSN = pgtest.DSN(t)
			} else {
				c.DSN = filepath.Join(t.TempDir(), "sts.db")
				sqlitetest.WriteMigrated(t, c.DSN) // Migrate below finds nothing to do
			}
			st, err := sqlstore.Open(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			// One connection, so the session setting covers every write.
			db := st.DB()
			db.SetMaxOpenConns(1)
			exec := func(q string) {
				t.Helper()
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			srv := server.New(server.Options{Store: st, WriteProbeInterval: 20 * time.Millisecond})
			ready := func() (int, map[string]string) {
				rec := httptest.NewRecorder()
				srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				var b struct{ Failing map[string]string }
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
					t.Fatalf("readyz body %q: %v", rec.Body, err)
				}
				return rec.Code, b.Failing
			}
			if code, failing := ready(); code != http.StatusOK {
				t.Fatalf("readyz before the fault = %d %v, want 200", code, failing)
			}

			exec(f.on)
			var n int
			if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM organizations").Scan(&n); err != nil {
				t.Fatalf("a read on the read-only store: %v", err)
			}
			waitReady(t, ready, http.StatusServiceUnavailable, map[string]string{"storage_write": "read-only"})
			if m := metrics(t, srv); !strings.Contains(m, `sts_readiness_check_up{check="storage_write"} 0`) ||
				!strings.Contains(m, `sts_readiness_check_up{check="storage"} 1`) {
				t.Errorf("readiness gauge on a read-only store, want storage_write 0 and storage 1:\n%s", grepLines(m, "sts_readiness_check_up"))
			}

			exec(f.off)
			waitReady(t, ready, http.StatusOK, nil)
		})
	}
}

func metrics(t *testing.T, srv *server.Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// waitReady polls /readyz until it answers code with exactly failing, for
// at most a few write-probe intervals.
func waitReady(t *testing.T, ready func() (int, map[string]string), code int, failing map[string]string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, f := ready()
		if got == code && equalFailing(f, failing) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz = %d %v, want %d %v", got, f, code, failing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equalFailing(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
