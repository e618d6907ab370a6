package sqlstore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// TestSQLitePoolHoldsConcurrency: MaxConns concurrent readers (32 by
// default: the listener's concurrency) and the bursts after them reuse the
// same connections; none is closed for exceeding the idle limit and
// reopened (pragmas and schema parse) on the next burst.
func TestSQLitePoolHoldsConcurrency(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	burst := func() {
		var ready, release sync.WaitGroup
		ready.Add(DefaultMaxConns)
		release.Add(1)
		var wg sync.WaitGroup
		for range DefaultMaxConns {
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
			DefaultMaxConns, st.MaxIdleClosed, st.OpenConnections, opened)
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
