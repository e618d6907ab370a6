package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// TestPostgresRollbackBounded (docs/security.md F-90): the rollback of a
// transaction whose work failed has a deadline of its own, whatever the
// caller's context allows. A background job (garbage collection, a key
// rotation) runs without a deadline; when the database stopped answering
// between its last statement and the rollback, the ROLLBACK waited for an
// answer that never came, holding the goroutine and a pool connection
// until TCP gave up (an hour and more behind a partition).
func TestPostgresRollbackBounded(t *testing.T) {
	proxy, dsn := faultproxy.PostgresDSN(t, newPostgresSchema(t))
	const bound = 500 * time.Millisecond
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn, ConnectTimeout: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	refused := errors.New("updater refused")
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		// t.Context() has no deadline, as a background job's has none.
		done <- s.WithTx(t.Context(), func(storage.Tx) error {
			proxy.Set(faultproxy.BlackHole)
			return refused
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, refused) {
			t.Errorf("WithTx = %v, want the updater's error", err)
		}
		if took := time.Since(start); took > 4*bound {
			t.Errorf("WithTx returned after %s, want within about %s", took, bound)
		}
	case <-time.After(10 * time.Second):
		proxy.Set(faultproxy.Refuse) // lets the stuck rollback end
		<-done
		t.Fatalf("WithTx still waiting for its rollback 10 s after the database stopped answering (bound %s)", bound)
	}

	// The connection whose rollback was cut off is dropped, not handed to
	// the next caller: once the database answers again, the pool works.
	proxy.Set(faultproxy.Pass)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var one int
	if err := s.DB().QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("SELECT 1 after the database came back = %d, %v", one, err)
	}
}

// TestPostgresVanishedClientReleasesLocks (docs/security.md F-91): a
// session whose client vanished mid-transaction gives up its row locks
// within a bound derived from storage.call_timeout, where PostgreSQL held
// them until TCP noticed (never, behind the fault proxy): every request
// needing the row (a pool's FOR NO KEY UPDATE, a rotation's FOR UPDATE)
// failed at its deadline meanwhile. Idle in its transaction, the session
// is ended by idle_in_transaction_session_timeout; running a statement,
// by client_connection_check_interval once its connection is closed.
func TestPostgresVanishedClientReleasesLocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		// mode makes the client go away while the transaction holds the
		// lock; stmt is what the session is doing then ("" for idle).
		mode faultproxy.Mode
		stmt string
	}{
		{"idle in transaction, black-holed", faultproxy.BlackHole, ""},
		{"running a statement, connection closed", faultproxy.Refuse, "SELECT pg_sleep(30)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := newPostgresSchema(t)
			proxy, dsn := faultproxy.PostgresDSN(t, direct)
			const callTimeout = 500 * time.Millisecond
			s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn, ConnectTimeout: callTimeout})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			other, err := sql.Open("pgx", direct)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.ExecContext(t.Context(), "CREATE TABLE locked (id int PRIMARY KEY); INSERT INTO locked VALUES (1)"); err != nil {
				t.Fatal(err)
			}

			tx, err := s.DB().BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				proxy.Set(faultproxy.Refuse) // the rollback ends at once
				tx.Rollback()                //nolint:errcheck // the session is gone
			}()
			if _, err := tx.ExecContext(t.Context(), "SELECT id FROM locked WHERE id = 1 FOR UPDATE"); err != nil {
				t.Fatal(err)
			}
			if tc.stmt != "" {
				go tx.ExecContext(t.Context(), tc.stmt) //nolint:errcheck // cut off below
				waitForStatement(t, other, tc.stmt)
			}
			proxy.Set(tc.mode)
			start := time.Now()

			// Another session takes the lock once the vanished one is
			// ended: each try waits at most 200 ms for it.
			for {
				_, err := other.ExecContext(t.Context(), "BEGIN; SET LOCAL lock_timeout = 200; SELECT id FROM locked WHERE id = 1 FOR UPDATE; COMMIT")
				if err == nil {
					break
				}
				other.ExecContext(t.Context(), "ROLLBACK") //nolint:errcheck // a no-op unless the batch stopped midway
				if time.Since(start) > 10*time.Second {
					t.Fatalf("the row lock of a session whose client vanished still held after %s (call timeout %s): %v", time.Since(start), callTimeout, err)
				}
			}
			if took := time.Since(start); took > 8*callTimeout {
				t.Errorf("the lock was released after %s, want within a few times %s", took, callTimeout)
			}
		})
	}
}

// waitForStatement waits until a session of the server runs stmt.
func waitForStatement(t *testing.T, db *sql.DB, stmt string) {
	t.Helper()
	for range 100 {
		var n int
		if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", stmt).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no session runs %q", stmt)
}
