package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// TestPostgresRollbackBounded (docs/security.md F-91): the rollback of a
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
