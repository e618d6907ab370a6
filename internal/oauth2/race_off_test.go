//go:build !race

package oauth2_test

const raceEnabled = false
