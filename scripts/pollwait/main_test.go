package main

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// TestRun: every byte sent is read and timed, with no busy goroutine and
// with one P fewer busy than there are, from its write (not from before the
// pause that precedes it: each pause is at least every/2, and with a P free
// the read follows the write within microseconds, so the median must be far
// below that).
//
// The same with every P busy and the world stopped every millisecond
// (-stw): the run still times every byte from its write. That the stops
// happen is TestStopTheWorld's; that they bring the median down is a
// measurement (docs/reliability.md), too timing-dependent to assert on a
// shared machine (without them the median is 3–5 ms, also under every/2).
func TestRun(t *testing.T) {
	const n, every = 20, 20 * time.Millisecond
	procs := runtime.GOMAXPROCS(0)
	for _, c := range []struct {
		busy int
		stw  time.Duration
	}{{0, 0}, {procs - 1, 0}, {procs, time.Millisecond}} {
		got, err := run(c.busy, n, every, 20*time.Microsecond, c.stw)
		if err != nil {
			t.Fatalf("busy %d, stw %v: %v", c.busy, c.stw, err)
		}
		if len(got) != n {
			t.Fatalf("busy %d, stw %v: %d waits, want %d", c.busy, c.stw, len(got), n)
		}
		if got[0] <= 0 || got[n/2] >= every/2 {
			t.Errorf("busy %d, stw %v: waits from %v, median %v; want above 0 and a median under %v", c.busy, c.stw, got[0], got[n/2], every/2)
		}
	}
}

// TestStopTheWorld: -stw stops the world about as often as asked (the
// runtime counts its stops other than the collector's).
func TestStopTheWorld(t *testing.T) {
	stops := func() uint64 {
		s := []metrics.Sample{{Name: "/sched/pauses/total/other:seconds"}}
		metrics.Read(s)
		var n uint64
		for _, c := range s[0].Value.Float64Histogram().Counts {
			n += c
		}
		return n
	}
	before := stops()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { stopTheWorld(&stop, time.Millisecond); close(done) }()
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	<-done
	if n := stops() - before; n < 5 {
		t.Errorf("%d stops of the world in 50 ms at one a millisecond, want at least 5", n)
	}
}
