package grants

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// TestMain runs six tests at once: the slow tests here (the served
// end-to-end ones, the replay races on SQLite and PostgreSQL) mostly wait
// for a database, not for a core. The tests that count allocations stay
// sequential: they run before the parallel tests are released.
func TestMain(m *testing.M) { paralleltest.Main(m, 6) }
