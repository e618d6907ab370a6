package signer

import (
	"crypto/rsa"
	"sync/atomic"
)

// testRSAKeys, when set, supplies the MinRSABits RSA keys generateKey
// would otherwise generate. Only test binaries set it, through
// SetTestRSAKeys: an RSA key costs about a second of CPU under the race
// detector, and every first start of a test server generates two (the
// RS256 extra algorithm's active and next keys). The sts binary never
// sets it (internal/archtest TestTestRSAKeysOnlyInTests).
var testRSAKeys atomic.Pointer[func() (*rsa.PrivateKey, bool)]

// SetTestRSAKeys makes generateKey take its MinRSABits RSA keys from next
// while next answers ok, and generate them as usual once it does not.
// It is for test kits only (internal/ststest/rsatest): next's keys are
// not secret. Other sizes are always generated.
func SetTestRSAKeys(next func() (key *rsa.PrivateKey, ok bool)) {
	testRSAKeys.Store(&next)
}

// testRSAKey returns a key from the SetTestRSAKeys source, if any.
func testRSAKey(bits int) (*rsa.PrivateKey, bool) {
	next := testRSAKeys.Load()
	if next == nil || bits != MinRSABits {
		return nil, false
	}
	return (*next)()
}
