package cache

import (
	"strconv"
	"testing"
	"time"
)

// TestTableEvictsGradually: when the table is full, the (N+1)th record
// evicts one (the least recently used), not the whole table, so a node
// with more clients in rotation than the bound keeps serving the rest from
// memory (no cliff at maxEntries).
func TestTableEvictsGradually(t *testing.T) {
	t.Parallel()
	var tb table[int]
	now := time.Now()
	for i := range maxEntries {
		tb.put(strconv.Itoa(i), i, tb.begin(), now)
	}
	// Touch record 0, so that record 1 is now the least recently used.
	if _, ok := tb.get("0", now, time.Minute); !ok {
		t.Fatal("record 0 not cached")
	}
	tb.put("new", -1, tb.begin(), now)
	if n := tb.len(); n != maxEntries {
		t.Errorf("len = %d after one more put, want %d (one evicted)", n, maxEntries)
	}
	if _, ok := tb.get("1", now, time.Minute); ok {
		t.Error("the least recently used record is still there")
	}
	for _, id := range []string{"0", "2", strconv.Itoa(maxEntries - 1), "new"} {
		if _, ok := tb.get(id, now, time.Minute); !ok {
			t.Errorf("record %s was evicted", id)
		}
	}
}

// TestTableFreesExpired: an entry read after its TTL is removed, not kept
// until the table fills.
func TestTableFreesExpired(t *testing.T) {
	t.Parallel()
	var tb table[int]
	now := time.Now()
	tb.put("a", 1, tb.begin(), now)
	tb.put("b", 2, tb.begin(), now.Add(4*time.Second))
	if _, ok := tb.get("a", now.Add(5*time.Second), 5*time.Second); ok {
		t.Fatal("expired entry served")
	}
	if n := tb.len(); n != 1 {
		t.Errorf("len = %d, want 1: the expired entry must be freed", n)
	}
}

// BenchmarkTableScaling is one cached-record lookup with 1, 10 000 (the
// bound) and 100 000 records in rotation, picked at random: the cost of a
// hit stays flat with the number held, and past the bound the hit rate
// falls gradually (about bound/N, reported as hit-%) instead of to nearly
// nothing when a full table is emptied.
// go test -run '^$' -bench TableScaling -benchmem ./internal/storage/cache
func BenchmarkTableScaling(b *testing.B) {
	for _, n := range []int{1, maxEntries, 100_000} {
		b.Run("records="+strconv.Itoa(n), func(b *testing.B) {
			var tb table[int]
			now := time.Now()
			ids := make([]string, n)
			for i := range ids {
				ids[i] = "client-" + strconv.Itoa(i)
			}
			rng := uint64(1)
			next := func() string {
				rng ^= rng << 13
				rng ^= rng >> 7
				rng ^= rng << 17
				return ids[rng%uint64(n)]
			}
			for range 2 * n {
				tb.put(next(), 1, tb.begin(), now)
			}
			hits := 0
			b.ReportAllocs()
			for b.Loop() {
				id := next()
				if _, ok := tb.get(id, now, time.Minute); ok {
					hits++
				} else {
					tb.put(id, 1, tb.begin(), now) // what a miss does after the storage read
				}
			}
			b.ReportMetric(100*float64(hits)/float64(b.N), "hit-%")
		})
	}
}
