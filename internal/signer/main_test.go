package signer_test

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// TestMain runs six tests at once: much of a test here waits for
// PostgreSQL (fresh schemas, replicas polling one database, a black-holed
// connection), not for a core; key generation under -race is what uses
// the cores, hence six, not more.
func TestMain(m *testing.M) { paralleltest.Main(m, 6) }
