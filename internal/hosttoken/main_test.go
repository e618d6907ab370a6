package hosttoken_test

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// TestMain runs eight tests at once: most of a test here waits for
// PostgreSQL (a fresh schema's migrations, row locks held on purpose, a
// black-holed connection), not for a core.
func TestMain(m *testing.M) { paralleltest.Main(m, 8) }
