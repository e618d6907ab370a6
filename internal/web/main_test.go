package web_test

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

// Four tests at once, not GOMAXPROCS (two here): most of the package's
// wall time is its tests waiting (for Chromium, a real server, SQLite's
// and PostgreSQL's commits), not using a CPU. An explicit -parallel wins.
func TestMain(m *testing.M) { paralleltest.Main(m, 4) }
