package app

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/opensts/sts/internal/config"
)

// restoreMemory puts the runtime's policy back after a test changes it.
func restoreMemory(t *testing.T) {
	limit, gc := memorySettings()
	t.Cleanup(func() { debug.SetMemoryLimit(limit); debug.SetGCPercent(gc) })
}

// TestMemoryPolicy: the configured limit and GC target are applied; the
// GOMEMLIMIT and GOGC environment variables win over them; 0 leaves the
// runtime's own values. (Not parallel: it changes process-wide settings.)
func TestMemoryPolicy(t *testing.T) {
	restoreMemory(t)
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	// LookupEnv sees "" as set: unset them for the first case.
	unsetenv(t, "GOMEMLIMIT")
	unsetenv(t, "GOGC")
	def := config.DefaultConfig().Runtime
	if limit, gc := applyMemoryPolicy(def, nil); limit != config.DefaultMemoryLimit || gc != config.DefaultGCPercent {
		t.Errorf("defaults: limit %d, gc %d; want %d, %d", limit, gc, config.DefaultMemoryLimit, config.DefaultGCPercent)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(100)
	if limit, gc := applyMemoryPolicy(config.RuntimeConfig{}, nil); limit != math.MaxInt64 || gc != 100 {
		t.Errorf("zero config: limit %d, gc %d; want the runtime's own", limit, gc)
	}

	t.Setenv("GOMEMLIMIT", "100MiB")
	t.Setenv("GOGC", "150")
	debug.SetMemoryLimit(100 << 20) // what the runtime made of the variables at start
	debug.SetGCPercent(150)
	if limit, gc := applyMemoryPolicy(def, nil); limit != 100<<20 || gc != 150 {
		t.Errorf("with GOMEMLIMIT and GOGC set: limit %d, gc %d; want the environment's", limit, gc)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}

// TestHeapProfilingOnlyWithPprof: the runtime's heap profiler samples
// allocations (one in 512 KiB, unwinding the stack each time, which maps
// the executable's function tables) only when something can read the
// profile: with ops.pprof, or when GODEBUG=memprofilerate asks for it.
// (Not parallel: it changes a process-wide setting.)
func TestHeapProfilingOnlyWithPprof(t *testing.T) {
	old := runtime.MemProfileRate
	t.Cleanup(func() { runtime.MemProfileRate = old })
	const def = 512 * 1024 // the runtime's default
	t.Setenv("GODEBUG", "")
	cases := []struct {
		name    string
		pprof   bool
		godebug string
		want    int
	}{
		{"no pprof", false, "", 0},
		{"pprof", true, "", def},
		{"no pprof, other GODEBUG", false, "gctrace=1", 0},
		{"GODEBUG memprofilerate", false, "gctrace=1,memprofilerate=4096", 4096},
	}
	for _, c := range cases {
		t.Setenv("GODEBUG", c.godebug)
		runtime.MemProfileRate = def
		if c.godebug != "" && c.want != 0 {
			runtime.MemProfileRate = c.want // what the runtime made of GODEBUG at start
		}
		if got := setHeapProfiling(c.pprof); got != c.want || runtime.MemProfileRate != c.want {
			t.Errorf("%s: rate %d (runtime %d), want %d", c.name, got, runtime.MemProfileRate, c.want)
		}
	}
}

// TestConcurrentMemoryPoliciesLeaveGCOn: servers starting at once in one
// process (internal/cli's tests run `sts serve` in-process, in parallel)
// apply the memory policy concurrently, and garbage collection stays on,
// and each reads the GC target in effect, never "off". Reading the target
// by turning collection off and back on let a second reader see "off" and
// write it back last. (Not parallel: it changes process-wide settings.)
func TestConcurrentMemoryPoliciesLeaveGCOn(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		t.Setenv("GOGC", "") // its cleanup restores the variable
		unsetenv(t, "GOGC")
		concurrentMemoryPolicies(t, config.DefaultConfig().Runtime)
	})
	t.Run("GOGC set", func(t *testing.T) {
		t.Setenv("GOGC", "100")
		concurrentMemoryPolicies(t, config.DefaultConfig().Runtime)
	})
}

func concurrentMemoryPolicies(t *testing.T, cfg config.RuntimeConfig) {
	restoreMemory(t)
	t.Setenv("GOMEMLIMIT", "")
	unsetenv(t, "GOMEMLIMIT")
	// Allocation churn, as in a test binary running servers: a GC cycle is
	// often in its mark phase, and SetGCPercent waits for it to end, which
	// is where concurrent callers interleave.
	stop := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		var sink [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			sink = append(sink, make([]byte, 64<<10))
			if len(sink) > 256 {
				sink = sink[:0]
			}
		}
	}()
	defer func() { close(stop); <-churned }()
	for round := range 300 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		read := make([]int, 4)
		for i := range read {
			wg.Go(func() {
				<-start
				_, read[i] = applyMemoryPolicy(cfg, nil)
			})
		}
		close(start)
		wg.Wait()
		for i, gc := range read {
			if gc < 0 {
				t.Errorf("round %d: applyMemoryPolicy %d read the GC target as %d (off)", round, i, gc)
			}
		}
		if gc := debug.SetGCPercent(100); gc < 0 {
			t.Fatalf("round %d: after concurrent applyMemoryPolicy the GC target is %d: collection is off for the process", round, gc)
		}
		if t.Failed() {
			return
		}
	}
}
