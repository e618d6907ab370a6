package app

import (
	"math"
	"os"
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
