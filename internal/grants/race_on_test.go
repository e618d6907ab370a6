//go:build race

package grants

// raceEnabled: the race detector makes sync.Pool drop items on purpose,
// so allocation counts of pooled paths are not checked under it.
const raceEnabled = true
