package signer

import "time"

// SetPollTimeout sets the bound of each storage step of a key poll
// (Tick) for a test, and returns what restores it.
func SetPollTimeout(d time.Duration) (restore func()) {
	old := pollTimeout
	pollTimeout = d
	return func() { pollTimeout = old }
}
