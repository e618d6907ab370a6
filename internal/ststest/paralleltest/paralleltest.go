// Package paralleltest sets how many parallel tests a package's test
// binary runs at once. It depends on nothing else of sts, so a package
// that internal/ststest itself imports (api, app) can use it from an
// internal test without an import cycle.
package paralleltest

import (
	"flag"
	"os"
	"strconv"
	"testing"
)

// SetDefault makes n the number of parallel tests run at once, unless
// -test.parallel was given. Go's default is one per core; a package whose
// tests mostly wait (on disk writes, loopback round trips, child
// processes) leaves its cores idle that way. It parses the test flags, so
// call it from TestMain before m.Run.
func SetDefault(n int) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}

// Main is a TestMain body: SetDefault(n), then run the tests and exit
// with their result.
func Main(m *testing.M, n int) {
	SetDefault(n)
	os.Exit(m.Run())
}
