//go:build memory.counters

package sqlstore

import (
	"context"
	"sync"
	"testing"

	"modernc.org/libc"
)

// TestSQLitePoolMemory measures what SQLite's connections keep outside the
// Go heap (modernc's allocator counts it only when built with its
// memory.counters tag):
//
//	go test -tags memory.counters -run TestSQLitePoolMemory -v ./internal/storage/sqlstore
//
// Twice DefaultMaxConns readers, each scanning a table larger than a
// connection's page cache, leave at most sqliteConns connections and about
// 0.6 MiB each (docs/performance.md "Memory policy"); before the pool was
// bounded they left 32 connections and 45 MiB.
func TestSQLitePoolMemory(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteAudit(t) // migrated, file-backed
	// 20 000 rows of about 200 bytes: 4 MiB of pages, more than a page cache.
	if _, err := s.db.ExecContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000)
		INSERT INTO audit_events (id, event_time, org_id, actor, action, detail)
		SELECT printf('%08d', x), x, 'acme', 'someone', 'token.exchange', hex(randomblob(60)) FROM c`); err != nil {
		t.Fatal(err)
	}
	before := libc.MemStat().Bytes
	var wg sync.WaitGroup
	for range 2 * DefaultMaxConns {
		wg.Go(func() {
			var n int
			if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM audit_events WHERE detail != ''").Scan(&n); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	open, grew := s.db.Stats().OpenConnections, libc.MemStat().Bytes-before
	t.Logf("%d readers: %d connections open, SQLite's memory grew by %d KiB (%d KiB a connection)",
		2*DefaultMaxConns, open, grew>>10, grew>>10/max(open, 1))
	if open > sqliteConns(DefaultMaxConns) || grew > open<<20 {
		t.Errorf("%d connections, %d KiB; want at most %d connections and 1 MiB each", open, grew>>10, sqliteConns(DefaultMaxConns))
	}
}
