package cache_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/faultproxy"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestRevocationSyncBounded (docs/security.md F-92): a catch-up of the
// revocation view on storage that stopped answering ends at a deadline of
// its own, and how long ago the view last caught up is visible. The poll
// runs on serve's context, which has none: on a black-holed database its
// read waited until TCP gave up, the view stopped catching up without a
// word (the warning is logged only once a catch-up returns) and token
// checks read storage, as a stale view makes them, for as long.
func TestRevocationSyncBounded(t *testing.T) {
	proxy, dsn := faultproxy.PostgresDSN(t, pgtest.DSN(t))
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	const bound = 300 * time.Millisecond
	defer cache.SetRevocationSyncTimeout(bound)()
	c := cache.New(s)
	if got := c.RevocationsSyncedAt(); !got.IsZero() {
		t.Errorf("RevocationsSyncedAt with the view off = %v, want zero", got)
	}
	c.EnableRevocations()
	before := time.Now()
	if err := c.SyncRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	synced := c.RevocationsSyncedAt()
	if synced.Before(before) || synced.After(time.Now()) {
		t.Errorf("RevocationsSyncedAt after a catch-up = %v, want between %v and now", synced, before)
	}

	proxy.Set(faultproxy.BlackHole)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.SyncRevocations(t.Context()) }() // no deadline, as serve's context
	select {
	case err := <-done:
		if err == nil {
			t.Error("SyncRevocations on a black-holed database succeeded")
		}
		if took := time.Since(start); took > 4*bound {
			t.Errorf("SyncRevocations returned after %s, want within about %s", took, bound)
		}
	case <-time.After(10 * time.Second):
		proxy.Set(faultproxy.Refuse) // lets the stuck read end
		<-done
		t.Fatalf("SyncRevocations still waiting 10 s after the database stopped answering (bound %s)", bound)
	}
	if got := c.RevocationsSyncedAt(); !got.Equal(synced) {
		t.Errorf("RevocationsSyncedAt after a failed catch-up = %v, want the last good one %v", got, synced)
	}
}
