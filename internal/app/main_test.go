package app_test

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// TestMain runs four parallel tests at once rather than one per core,
// unless -test.parallel is given: this package's tests mostly wait (for a
// server to start, for a database behind a fault proxy, out a cache), so
// on two cores the package used about a seventh of one core while its
// tests ran one after another. Tests stay sequential, and so never overlap
// the parallel ones, when they read or change process-wide state (the
// goroutine count, allocations, the environment, the GC settings, package
// variables: every internal test) or bound how soon something happens (a
// latency, a deadline, an audit batch or the revocation view arriving, a
// request beating a poll), since parallel load stretches those. Generous
// guards against a hang (a server that never becomes ready or never stops)
// are not such bounds.
func TestMain(m *testing.M) { paralleltest.Main(m, 4) }
