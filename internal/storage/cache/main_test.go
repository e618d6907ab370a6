package cache_test

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// TestMain runs eight tests at once: a test here mostly waits for SQLite's
// fsyncs, not for a core. The tests that set the package's limits
// (SetMaxRevocations, SetRevocationSyncTimeout) are not parallel: they run
// before the parallel tests are released.
func TestMain(m *testing.M) { paralleltest.Main(m, 8) }
