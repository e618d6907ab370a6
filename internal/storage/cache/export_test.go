package cache

import "time"

// SetMaxRevocations sets the revocation view's row limit for one test.
func SetMaxRevocations(n int) (restore func()) {
	old := maxRevocations
	maxRevocations = n
	return func() { maxRevocations = old }
}

// SetRevocationSyncTimeout sets the bound of one catch-up of the
// revocation view for one test.
func SetRevocationSyncTimeout(d time.Duration) (restore func()) {
	old := revocationSyncTimeout
	revocationSyncTimeout = d
	return func() { revocationSyncTimeout = old }
}
