package main

import (
	"runtime"
	"testing"
	"time"
)

// TestRun: every byte sent is read and timed, with no busy goroutine and
// with one P fewer busy than there are, from its write (not from before the
// pause that precedes it: each pause is at least every/2, and with a P free
// the read follows the write within microseconds, so the median must be far
// below that).
func TestRun(t *testing.T) {
	const n, every = 20, 20 * time.Millisecond
	for _, busy := range []int{0, runtime.GOMAXPROCS(0) - 1} {
		got, err := run(busy, n, every, 20*time.Microsecond)
		if err != nil {
			t.Fatalf("busy %d: %v", busy, err)
		}
		if len(got) != n {
			t.Fatalf("busy %d: %d waits, want %d", busy, len(got), n)
		}
		if got[0] <= 0 || got[n/2] >= every/2 {
			t.Errorf("busy %d: waits from %v, median %v; want above 0 and a median under %v", busy, got[0], got[n/2], every/2)
		}
	}
}
