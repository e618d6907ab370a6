package app

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
	"sync"

	"github.com/opensts/sts/internal/config"
)

// applyMemoryPolicy sets the Go runtime's memory limit and GC target from
// cfg (docs/performance.md "Memory policy"): a GOGC well above the
// default, so that a small live heap does not mean a collection every few
// hundred requests, bounded by a soft memory limit that keeps the process
// inside its RSS budget. GOMEMLIMIT and GOGC in the environment win over
// the configuration (the runtime has applied them already); 0 leaves the
// runtime's own value. It returns the values in effect.
func applyMemoryPolicy(cfg config.RuntimeConfig, logger *slog.Logger) (limit int64, gcPercent int) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	if _, set := os.LookupEnv("GOGC"); !set && cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	limit, gcPercent = memorySettings()
	if logger != nil {
		logger.Debug("memory policy", "memory_limit_bytes", limit, "gc_percent", gcPercent)
	}
	return limit, gcPercent
}

// memorySettings reads the runtime's memory limit and GC target without
// changing them. (Reading the target with SetGCPercent turns collection
// off until it is put back, and two servers starting at once in one
// process could leave it off.)
func memorySettings() (limit int64, gcPercent int) {
	s := []rtmetrics.Sample{{Name: "/gc/gomemlimit:bytes"}, {Name: "/gc/gogc:percent"}}
	rtmetrics.Read(s)
	// Both are signed in the runtime: GOGC=off reads as -1.
	return int64(s[0].Value.Uint64()), int(int64(s[1].Value.Uint64()))
}

// heapProfiling turns the runtime's heap profiler off unless the heap
// profile can be read: with pprof (ops.pprof), or when GODEBUG sets
// memprofilerate (the runtime applied it already). Sampling one
// allocation in 512 KiB unwinds the allocating stack each time, which
// under load maps about 1.2 MiB more of the executable's function tables
// (docs/performance.md "Memory policy"). It returns the rate in effect.
//
// runtime.MemProfileRate is a plain variable, to be set once, early: the
// first server of a process decides (tests start several `sts serve` in
// one process, concurrently).
func heapProfiling(pprof bool) int {
	heapProfilingOnce.Do(func() { setHeapProfiling(pprof) })
	return runtime.MemProfileRate
}

var heapProfilingOnce sync.Once

// setHeapProfiling is heapProfiling's decision, made every time it is
// called.
func setHeapProfiling(pprof bool) int {
	if !pprof && !godebugSets("memprofilerate") {
		runtime.MemProfileRate = 0
	}
	return runtime.MemProfileRate
}

// godebugSets reports whether GODEBUG names setting.
func godebugSets(setting string) bool {
	for kv := range strings.SplitSeq(os.Getenv("GODEBUG"), ",") {
		if k, _, _ := strings.Cut(kv, "="); strings.TrimSpace(k) == setting {
			return true
		}
	}
	return false
}
