package tokens

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestSourceCacheEvictsGradually: with more live sources in rotation than
// maxSourceEntries, one more evicts one (the least recently used) rather
// than emptying the cache, and an entry found expired is freed.
func TestSourceCacheEvictsGradually(t *testing.T) {
	now := time.Now()
	s := &StoreSources{TTL: time.Minute, Now: func() time.Time { return now }}
	reads := 0
	ok := func() error { reads++; return nil }
	ctx := context.Background()
	for i := range maxSourceEntries {
		if err := s.check(ctx, strconv.Itoa(i), ok); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.check(ctx, "0", ok) // touch: 1 is now the least recently used
	_ = s.check(ctx, "new", ok)
	if n := s.cachedLen(); n != maxSourceEntries {
		t.Errorf("len = %d, want %d", n, maxSourceEntries)
	}
	reads = 0
	for _, k := range []string{"0", "2", strconv.Itoa(maxSourceEntries - 1), "new"} {
		_ = s.check(ctx, k, ok)
	}
	if reads != 0 {
		t.Errorf("%d of the recently used sources were read again, want 0", reads)
	}
	_ = s.check(ctx, "1", ok)
	if reads != 1 {
		t.Error("the least recently used source was not evicted")
	}

	now = now.Add(2 * time.Minute)
	before := s.cachedLen()
	_ = s.check(ctx, "2", func() error { return errSourceTest })
	if s.cachedLen() != before-1 {
		t.Error("an expired entry that failed its re-read is still held")
	}
}

var errSourceTest = ErrSourceGone
