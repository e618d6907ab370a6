package cache_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/storage/conformance"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

func openSQLite(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

// The decorator is held to the same contract as the backend it wraps
// (decorators run the suite by wrapping the SQLite store), with the
// revocation view on, as sts serve runs it on SQLite.
func TestConformance(t *testing.T) {
	t.Parallel()
	newStore := func(t *testing.T) storage.Store {
		path := filepath.Join(t.TempDir(), "sts.db")
		sqlitetest.WriteMigrated(t, path) // openSQLite's Migrate finds nothing to do
		s := cache.New(openSQLite(t, path))
		s.EnableRevocations()
		if err := s.SyncRevocations(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	conformance.RunTests(t, newStore)
	conformance.RunConcurrencyTests(t, newStore)
}

type clock = clocktest.Clock

// env is one database seen by two processes: elsewhere (another replica,
// or the CLI) writes to it directly; here is this replica's cached store.
type env struct {
	elsewhere storage.Store
	here      *cache.Store
	clock     *clock
	client    storage.Client
	principal storage.Principal
}

// sharedFile opens one new SQLite file twice, as two processes would:
// elsewhere writes directly, here is what a cache wraps.
func sharedFile(t *testing.T) (elsewhere, here *sqlstore.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sts.db")
	sqlitetest.WriteMigrated(t, path)
	a := openSQLite(t, path)
	t.Cleanup(func() { a.Close() })
	b := openSQLite(t, path)
	t.Cleanup(func() { b.Close() })
	return a, b
}

func newEnv(t *testing.T) *env {
	t.Helper()
	a, b := sharedFile(t)
	e := &env{elsewhere: a, here: cache.New(b), clock: clocktest.New(time.Now())}
	e.here.Now = e.clock.Now
	ctx := t.Context()
	now := storage.Now(time.Now())
	org := storage.Organization{ID: storage.NewID(), Name: "org", Tier: "free", CreatedAt: now, UpdatedAt: now}
	e.principal = storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalServiceAccount, Name: "sa", CreatedAt: now, UpdatedAt: now}
	e.client = storage.Client{ID: "c-" + storage.NewID(), OrgID: org.ID, PrincipalID: e.principal.ID, Name: "c", AuthMethod: "client_secret_basic",
		SecretDigest: []byte("digest-1"), Scopes: []string{"read"}, CreatedAt: now, UpdatedAt: now}
	for _, err := range []error{
		a.CreateOrganization(ctx, org), a.CreatePrincipal(ctx, e.principal), a.CreateClient(ctx, e.client),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func disableClient(c storage.Client) (storage.Client, error) { c.Disabled = true; return c, nil }

func (e *env) cachedClient(t *testing.T) (storage.Client, bool) {
	t.Helper()
	c, cached, err := e.here.CachedClient(t.Context(), e.client.ID)
	if err != nil {
		t.Fatalf("CachedClient = %v", err)
	}
	return c, cached
}

// A change made elsewhere is served stale for less than TTL and never
// after; a plain GetClient always reads the database.
func TestChangeElsewhereSeenWithinTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, cached := e.cachedClient(t); cached {
		t.Fatal("first read was served from memory")
	}
	if _, cached := e.cachedClient(t); !cached {
		t.Fatal("second read inside TTL was not served from memory")
	}
	if err := e.elsewhere.UpdateClient(t.Context(), e.client.ID, disableClient); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(cache.DefaultTTL - time.Millisecond)
	if c, cached := e.cachedClient(t); !cached || c.Disabled {
		t.Fatalf("inside TTL: cached=%v disabled=%v, want the cached enabled copy", cached, c.Disabled)
	}
	if c, err := e.here.GetClient(t.Context(), e.client.ID); err != nil || !c.Disabled {
		t.Fatalf("GetClient = %+v, %v: want the stored (disabled) row", c, err)
	}
	// GetClient refreshed the copy.
	if c, cached := e.cachedClient(t); !cached || !c.Disabled {
		t.Fatalf("after GetClient: cached=%v disabled=%v, want the refreshed copy", cached, c.Disabled)
	}
	if err := e.elsewhere.DeleteClient(t.Context(), e.client.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(cache.DefaultTTL)
	if _, _, err := e.here.CachedClient(t.Context(), e.client.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after TTL, deleted elsewhere: err = %v, want ErrNotFound", err)
	}
}

// Changes through this store are seen at once, for clients and principals.
func TestOwnChangeSeenAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.cachedClient(t)
	if err := e.here.UpdateClient(ctx, e.client.ID, disableClient); err != nil {
		t.Fatal(err)
	}
	if c, cached := e.cachedClient(t); cached || !c.Disabled {
		t.Fatalf("after own update: cached=%v disabled=%v, want a fresh disabled row", cached, c.Disabled)
	}
	if err := e.here.DeleteClient(ctx, e.client.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.here.CachedClient(ctx, e.client.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after own delete: %v, want ErrNotFound", err)
	}

	if _, cached, err := e.here.CachedPrincipal(ctx, e.principal.ID); err != nil || cached {
		t.Fatalf("first CachedPrincipal: cached=%v err=%v", cached, err)
	}
	if _, cached, _ := e.here.CachedPrincipal(ctx, e.principal.ID); !cached {
		t.Fatal("second CachedPrincipal not served from memory")
	}
	err := e.here.UpdatePrincipal(ctx, e.principal.ID, func(p storage.Principal) (storage.Principal, error) { p.Disabled = true; return p, nil })
	if err != nil {
		t.Fatal(err)
	}
	if p, cached, err := e.here.CachedPrincipal(ctx, e.principal.ID); err != nil || cached || !p.Disabled {
		t.Fatalf("after own update: %+v cached=%v err=%v, want a fresh disabled row", p, cached, err)
	}
	if err := e.here.DeletePrincipal(ctx, e.principal.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.here.CachedPrincipal(ctx, e.principal.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after own delete: %v, want ErrNotFound", err)
	}
}

// A change made in a unit of work (with its audit event,
// docs/design.md#audit) is seen at once too, not after the TTL.
func TestOwnUnitOfWorkSeenAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.cachedClient(t)
	if _, cached, err := e.here.CachedPrincipal(ctx, e.principal.ID); err != nil || cached {
		t.Fatalf("first CachedPrincipal: cached=%v err=%v", cached, err)
	}
	err := e.here.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.UpdateClient(ctx, e.client.ID, disableClient); err != nil {
			return err
		}
		return tx.UpdatePrincipal(ctx, e.principal.ID, func(p storage.Principal) (storage.Principal, error) { p.Disabled = true; return p, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, cached := e.cachedClient(t); cached || !c.Disabled {
		t.Fatalf("after own unit of work: cached=%v disabled=%v, want a fresh disabled client", cached, c.Disabled)
	}
	if p, cached, err := e.here.CachedPrincipal(ctx, e.principal.ID); err != nil || cached || !p.Disabled {
		t.Fatalf("after own unit of work: %+v cached=%v err=%v, want a fresh disabled principal", p, cached, err)
	}
	if err := e.here.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteClient(ctx, e.client.ID) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.here.CachedClient(ctx, e.client.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after a delete in a unit of work: %v, want ErrNotFound", err)
	}
}

// Not-found is not remembered: a client created elsewhere works at once.
func TestNotFoundNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client
	c.ID = "c-" + storage.NewID()
	if _, _, err := e.here.CachedClient(t.Context(), c.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	if err := e.elsewhere.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.here.CachedClient(t.Context(), c.ID); err != nil {
		t.Fatalf("client created elsewhere: %v, want found at once", err)
	}
}

// What a caller is given is its own: changing it does not change the cache.
func TestCopiesAreIndependent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for range 2 { // the first value comes from the database, the second from memory
		c, _ := e.cachedClient(t)
		c.Scopes[0] = "admin"
		c.SecretDigest[0] = 'X'
	}
	got, cached := e.cachedClient(t)
	if !cached || got.Scopes[0] != "read" || string(got.SecretDigest) != "digest-1" {
		t.Fatalf("cached copy changed through a returned value: %+v", got)
	}
}

func TestZeroTTLDisables(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.here.TTL = 0
	e.cachedClient(t)
	if _, cached := e.cachedClient(t); cached {
		t.Fatal("TTL 0 served from memory")
	}
}

// slowReads holds GetClient after the row was read, so a write can land in
// between.
type slowReads struct {
	storage.Store
	read, release chan struct{}
}

func (s *slowReads) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := s.Store.GetClient(ctx, id)
	if s.read != nil {
		close(s.read)
		<-s.release
	}
	return c, err
}

// A read that saw the row before this replica changed it must not put that
// older copy back after the change dropped it (the generation guard).
func TestReadRacingOwnWriteDoesNotRefillStale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slow := &slowReads{Store: e.here.Store, read: make(chan struct{}), release: make(chan struct{})}
	e.here.Store = slow
	done := make(chan storage.Client)
	go func() {
		c, _, _ := e.here.CachedClient(context.Background(), e.client.ID)
		done <- c
	}()
	<-slow.read
	slow.read = nil // the write's own reads (none here) and later reads pass straight through
	if err := e.here.UpdateClient(t.Context(), e.client.ID, disableClient); err != nil {
		t.Fatal(err)
	}
	close(slow.release)
	if old := <-done; old.Disabled {
		t.Fatal("the racing read should have seen the row from before the write")
	}
	if c, cached := e.cachedClient(t); cached || !c.Disabled {
		t.Fatalf("after the race: cached=%v disabled=%v, want a fresh disabled row", cached, c.Disabled)
	}
}
