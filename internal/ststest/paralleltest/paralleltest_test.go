package paralleltest_test

import (
	"flag"
	"testing"

	"github.com/opensts/sts/internal/ststest/paralleltest"
)

var given bool // -test.parallel was on the command line

func TestMain(m *testing.M) {
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	paralleltest.Main(m, 3)
}

// TestSetDefault: without -test.parallel the binary runs the number given
// to Main; with it, the flag's value stands.
func TestSetDefault(t *testing.T) {
	if given {
		t.Skip("-test.parallel given: Main leaves it as it is")
	}
	if got := flag.Lookup("test.parallel").Value.String(); got != "3" {
		t.Errorf("test.parallel = %s, want 3", got)
	}
}
