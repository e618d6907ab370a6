package sqlstore_test

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// TestMain runs eight tests at once: most of a test here waits for
// PostgreSQL or for SQLite's fsyncs (every subtest of the conformance
// suites migrates a store of its own), not for a core. The tests that
// assert a bound on a duration, hold a process-wide limit (RLIMIT_FSIZE)
// or a database-wide lock, count allocations, or run under a watchdog
// (TestSQLiteOneConnection) are not parallel: they run before the
// parallel tests are released.
func TestMain(m *testing.M) { paralleltest.Main(m, 8) }
