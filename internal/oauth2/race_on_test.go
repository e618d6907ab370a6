//go:build race

package oauth2_test

// raceEnabled: the race detector makes sync.Pool drop items on purpose (a
// quarter of Puts), so a pooled path allocates now and then under it; the
// allocation tests allow one more then.
const raceEnabled = true
