package server

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/faultproxy"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestGCBoundedWhenDatabaseGoesAway (docs/security.md F-91): each step of
// a garbage collection (the health check, the collection, audit
// retention) ends at a deadline of its own. The loop runs on serve's
// context, which has none: on a black-holed PostgreSQL its ping waited
// until TCP gave up on the connection (for ever behind the fault proxy),
// and no expired row was collected again, even once the database was
// back, until the process restarted.
func TestGCBoundedWhenDatabaseGoesAway(t *testing.T) {
	proxy, dsn := faultproxy.PostgresDSN(t, pgtest.DSN(t))
	store, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	s, logs := newTest(t, Options{Store: store, GCInterval: time.Hour}, nil)
	const bound = 300 * time.Millisecond
	s.gcStep = bound

	// A connection is open and idle in the pool, as on a serving node
	// (a new one would end at connect_timeout).
	if err := store.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	proxy.Set(faultproxy.BlackHole)
	done := make(chan struct{})
	start := time.Now()
	go func() { s.collectGarbage(t.Context()); close(done) }() // no deadline, as serve's context
	select {
	case <-done:
		if took := time.Since(start); took > 4*bound {
			t.Errorf("collectGarbage returned after %s, want within about %s", took, bound)
		}
	case <-time.After(10 * time.Second):
		proxy.Set(faultproxy.Refuse) // lets the stuck call end
		<-done
		t.Fatalf("collectGarbage still waiting 10 s after the database stopped answering (step bound %s)", bound)
	}

	// Once the database answers again, the next collection runs.
	proxy.Set(faultproxy.Pass)
	logs.Reset()
	s.gcStep = 5 * time.Second
	s.collectGarbage(t.Context())
	if out := logs.String(); out != "" {
		t.Errorf("garbage collection after the database came back logged %s", out)
	}
}
