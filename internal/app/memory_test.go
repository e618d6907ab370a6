package app

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/opensts/sts/internal/config"
)

// restoreMemory puts the runtime's policy back after a test changes it.
func restoreMemory(t *testing.T) {
	limit, gc := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
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
