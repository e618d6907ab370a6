package api

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// TestMain runs four parallel tests at once rather than one per core,
// unless -test.parallel is given: most tests here wait on SQLite's and
// PostgreSQL's disk writes and on loopback round trips, so one after
// another they left the package's two cores mostly idle. Tests stay
// sequential, and so never overlap the parallel ones, when they bound how
// soon something happens or rely on a sleep to order two calls (a
// caller's deadline met within a window, a competing write given 500 ms
// to get in), since parallel load stretches those; each says so. The
// package's tests change no package variable and no environment variable.
func TestMain(m *testing.M) { paralleltest.Main(m, 4) }
