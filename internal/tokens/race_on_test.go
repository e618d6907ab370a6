//go:build race

package tokens_test

// raceEnabled: the race detector makes sync.Pool drop items on purpose
// (the signer's token buffer is pooled), so allocation counts are not
// checked under it.
const raceEnabled = true
