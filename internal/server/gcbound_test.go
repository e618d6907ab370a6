package server

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/faultproxy"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestGCBoundedWhenDatabaseGoesAway (docs/security.md F-90): each step of
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

// TestGCBacklogProgressesUnderStepBound (docs/security.md F-90): a
// backlog of expired rows larger than one step's bound can delete is
// collected over several intervals. The collection was one transaction:
// cut off by the bound, it was rolled back whole at every interval and
// the backlog never shrank (on SQLite holding the write lock for the whole
// bound each time). Scaled down, and to this machine's speed: the bound is
// 4 times what collecting one batch of expired rows took, the backlog
// 20 batches.
func TestGCBacklogProgressesUnderStepBound(t *testing.T) {
	// Small batches keep the test short: with the default's 5 000 rows
	// the backlog had to be 100 000, 50 s under -race.
	const batch = 500
	store, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db"), GCBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	expire := func(from, rows int) {
		t.Helper()
		if _, err := store.DB().ExecContext(t.Context(), `WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i+1 FROM n WHERE i < ?)
			INSERT INTO used_jtis (id, expires_at) SELECT 'jti-' || i, 1 FROM n`, from, from+rows-1); err != nil {
			t.Fatal(err)
		}
	}
	s, logs := newTest(t, Options{Store: store, GCInterval: time.Hour}, nil)
	s.gcStep = time.Minute
	expire(1, batch)
	start := time.Now()
	s.collectGarbage(t.Context())
	s.gcStep = 4 * time.Since(start)

	const rows = 20 * batch
	expire(1, rows)
	left := rows
	for i := 1; left > 0; i++ {
		if i > 40 {
			t.Fatalf("after 40 collections bounded by %s, %d of %d expired rows are left; last logged %s", s.gcStep, left, rows, strings.TrimSpace(logs.String()))
		}
		logs.Reset()
		s.collectGarbage(t.Context())
		if err := store.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM used_jtis`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		t.Logf("collection %d (bound %s): %d rows left", i, s.gcStep, left)
	}
}
