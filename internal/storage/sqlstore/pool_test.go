package sqlstore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestSQLitePoolHoldsConcurrency: as many concurrent readers as the pool
// holds (sqliteConns) and the bursts after them reuse the same
// connections; none is closed for exceeding the idle limit and reopened
// (pragmas and schema parse) on the next burst.
func TestSQLitePoolHoldsConcurrency(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	burst := func() {
		var ready, release sync.WaitGroup
		ready.Add(sqliteConns(DefaultMaxConns))
		release.Add(1)
		var wg sync.WaitGroup
		for range sqliteConns(DefaultMaxConns) {
			wg.Go(func() {
				conn, err := s.db.Conn(ctx)
				if err != nil {
					t.Error(err)
					ready.Done()
					return
				}
				defer conn.Close()
				var n int
				if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
					t.Error(err)
				}
				ready.Done()
				release.Wait()
			})
		}
		ready.Wait()
		release.Done()
		wg.Wait()
	}
	burst()
	opened := s.db.Stats().OpenConnections
	for range 3 {
		burst()
	}
	st := s.db.Stats()
	if st.MaxIdleClosed != 0 || st.OpenConnections != opened {
		t.Errorf("after 4 bursts of %d: %d connections closed over the idle limit, %d open (first burst %d); want 0 and no change",
			sqliteConns(DefaultMaxConns), st.MaxIdleClosed, st.OpenConnections, opened)
	}
}

// TestSQLitePoolBounded: more concurrent requests than the pool holds
// open no more connections than it holds; the others wait for one. Each
// SQLite connection keeps its schema, lookaside and page cache in memory
// outside the Go heap and its limit (about 0.6 MiB once it has read a
// table: TestSQLitePoolMemory, docs/performance.md "Memory policy"), so a
// pool without an open limit grew with the concurrency it had seen.
func TestSQLitePoolBounded(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteAudit(t) // migrated, file-backed
	const readers = 2 * DefaultMaxConns
	var wg sync.WaitGroup
	var mu sync.Mutex
	most := 0
	for range readers {
		wg.Go(func() {
			conn, err := s.db.Conn(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			var n int
			if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM organizations").Scan(&n); err != nil {
				t.Error(err)
			}
			mu.Lock()
			most = max(most, s.db.Stats().OpenConnections)
			mu.Unlock()
			time.Sleep(time.Millisecond) // hold it, so that the readers overlap
		})
	}
	wg.Wait()
	if limit := sqliteConns(DefaultMaxConns); most > limit {
		t.Errorf("%d concurrent readers opened %d connections; want at most %d", readers, most, limit)
	}
}

// TestSQLiteCacheBounded: each SQLite connection's page cache is bounded
// (sqliteCacheKiB), so DefaultMaxConns idle connections stay inside the
// process's RSS budget (docs/performance.md "Memory policy"): SQLite's
// default is 2 MiB each, 64 MiB for 32 connections.
func TestSQLiteCacheBounded(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != -sqliteCacheKiB || sqliteCacheKiB*DefaultMaxConns > 16<<10 {
		t.Errorf("cache_size = %d (want -%d), %d KiB for %d connections", n, sqliteCacheKiB, sqliteCacheKiB*DefaultMaxConns, DefaultMaxConns)
	}
}
