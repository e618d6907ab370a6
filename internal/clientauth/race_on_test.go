//go:build race

package clientauth

// raceEnabled: the race detector makes sync.Pool drop items on purpose
// (secret.Digest pools its keyed HMACs), so allocation counts are not
// checked under it.
const raceEnabled = true
