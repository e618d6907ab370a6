//go:build !linux

package faulttest

import (
	"testing"
	"time"
)

// diskFull needs prlimit(2) (Linux); elsewhere the scenario runs without it.
func diskFull(t *testing.T, _ *node, _ *writer) (string, time.Duration) {
	t.Log("disk full: not run (prlimit is Linux only)")
	return "", 0
}
