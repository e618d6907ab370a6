package pat

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func cacheTestService(t *testing.T, now *time.Time) *Service {
	t.Helper()
	s, err := NewService(struct{ Store }{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return *now }
	return s
}

func entryFor(id string, fetched time.Time) cacheEntry {
	return cacheEntry{pat: storage.PAT{ID: id}, fetched: fetched}
}

// TestPATCacheEvictsGradually: with more PATs in rotation than
// maxCacheEntries, one more evicts one (the least recently used), and the
// ID index stays in step, instead of both being emptied.
func TestPATCacheEvictsGradually(t *testing.T) {
	now := storage.Now(time.Now()) // the service's own clock precision
	s := cacheTestService(t, &now)
	for i := range maxCacheEntries {
		s.cachePut("d"+strconv.Itoa(i), entryFor(strconv.Itoa(i), now), 0)
	}
	if _, ok := s.cached([]byte("d0"), now); !ok { // touch: d1 is the least recently used
		t.Fatal("d0 not cached")
	}
	s.cachePut("dnew", entryFor("new", now), 0)
	if n, ids := s.cacheLen(); n != maxCacheEntries || ids != maxCacheEntries {
		t.Errorf("len = %d entries, %d IDs; want %d each", n, ids, maxCacheEntries)
	}
	for _, d := range []string{"d0", "d2", "dnew"} {
		if _, ok := s.cached([]byte(d), now); !ok {
			t.Errorf("%s evicted", d)
		}
	}
	if _, ok := s.cached([]byte("d1"), now); ok {
		t.Error("the least recently used entry was not evicted")
	}
}

// TestPATCacheFreesExpired: entries past the cache TTL are freed, both when
// looked up and, for the ones nobody asks for again, at the next flush.
func TestPATCacheFreesExpired(t *testing.T) {
	now := storage.Now(time.Now()) // the service's own clock precision
	s := cacheTestService(t, &now)
	s.cachePut("a", entryFor("a", now), 0)
	s.cachePut("b", entryFor("b", now), 0)
	s.cachePut("c", entryFor("c", now.Add(4*time.Second)), 0)
	now = now.Add(DefaultCacheTTL)
	if _, ok := s.cached([]byte("a"), now); ok {
		t.Fatal("expired entry served")
	}
	if n, ids := s.cacheLen(); n != 2 || ids != 2 {
		t.Errorf("after an expired lookup: %d entries, %d IDs; want 2", n, ids)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, ids := s.cacheLen(); n != 1 || ids != 1 {
		t.Errorf("after a flush: %d entries, %d IDs; want 1 (only the fresh one)", n, ids)
	}
}
