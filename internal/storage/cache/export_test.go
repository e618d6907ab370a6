package cache

// SetMaxRevocations sets the revocation view's row limit for one test.
func SetMaxRevocations(n int) (restore func()) {
	old := maxRevocations
	maxRevocations = n
	return func() { maxRevocations = old }
}
