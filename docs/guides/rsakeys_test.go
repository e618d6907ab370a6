package guides_test

import "github.com/opensts/sts/internal/ststest/rsatest"

// This package's test servers take their RS256 keys from rsatest's fixed
// primes: generating the two of a first start is most of a start's CPU
// under the race detector. Tests of other key sizes still generate theirs.
func init() { rsatest.Install() }
