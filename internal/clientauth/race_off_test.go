//go:build !race

package clientauth

const raceEnabled = false
