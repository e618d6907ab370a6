package hosttoken_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// TestRefreshBoundedWhenDatabaseGoesAway (docs/security.md F-89): the
// refresh job's storage calls have deadlines of their own. It runs on
// serve's context, which has none, and stores its result detached from
// cancellation: with PostgreSQL black-holed, while the job waited for a
// token endpoint or before a poll, the job hung until TCP gave up on the
// connection (for ever behind the fault proxy), and no host token of the
// replica was refreshed meanwhile, nor after the database came back. The
// stored result is tried again within the lease, no longer.
func TestRefreshBoundedWhenDatabaseGoesAway(t *testing.T) {
	t.Parallel()
	w, proxy, _ := worldBehindProxy(t)
	srv := newOAuthServer(t, "ghr_initial")
	r := refresher(w, srv)
	// Storing a result is tried again until the lease ends (F-89): a
	// short lease keeps the test short.
	r.Lease = 8 * time.Second
	w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(5*time.Minute))

	const bound = 25 * time.Second
	runOnce := func(what string) {
		t.Helper()
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- r.RunOnce(context.Background()) }()
		select {
		case err := <-done:
			t.Logf("%s: RunOnce = %v after %s", what, err, time.Since(start).Round(time.Millisecond))
		case <-time.After(bound):
			proxy.Close() // lets the waiting call, and the test's cleanup, end
			t.Fatalf("%s: RunOnce still waiting after %s", what, bound)
		}
	}
	// The database goes away while the token endpoint answers: storing
	// the result waits on it.
	srv.hold = func(int64) { proxy.Set(faultproxy.BlackHole) }
	runOnce("black-holed during the refresh")
	// Black-holed before a poll: the listing waits on it.
	srv.hold = nil
	runOnce("black-holed before the poll")
}

// worldBehindProxy is a world on a fresh PostgreSQL schema that it
// reaches through a fault proxy, and the schema's direct DSN (for a second
// session that bypasses the proxy). It skips without STS_TEST_POSTGRES_DSN.
func worldBehindProxy(t *testing.T) (w *world, proxy *faultproxy.Proxy, direct string) {
	t.Helper()
	dsn := os.Getenv("STS_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("STS_TEST_POSTGRES_DSN is not set")
	}
	c := postgresSchema(t, dsn)
	direct = c.DSN
	proxy, c.DSN = faultproxy.PostgresDSN(t, c.DSN)
	return newWorld(t, open(t, c)), proxy, direct
}
