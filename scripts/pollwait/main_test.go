package main

import (
	"testing"
	"time"
)

// TestRun: every byte sent is read and timed, on a loopback connection,
// with and without busy goroutines.
func TestRun(t *testing.T) {
	for _, busy := range []int{0, 1} {
		got, err := run(busy, 20, time.Millisecond, 20*time.Microsecond)
		if err != nil {
			t.Fatalf("busy %d: %v", busy, err)
		}
		if len(got) != 20 {
			t.Fatalf("busy %d: %d waits, want 20", busy, len(got))
		}
		if got[0] <= 0 || got[len(got)-1] > 5*time.Second {
			t.Errorf("busy %d: waits from %v to %v", busy, got[0], got[len(got)-1])
		}
	}
}
