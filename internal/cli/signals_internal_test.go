package cli

import (
	"bytes"
	"os/signal"
	"syscall"
	"testing"
)

// TestServeHangupLeavesSIGHUPNotIgnored (docs/operations.md "Signals and
// exit codes"): serve away from a terminal survives SIGHUP by catching
// and dropping it, not by ignoring it. An ignored signal stays ignored in
// every process this one starts, and a process that runs serve in it (the
// tests do) would start its commands with SIGHUP ignored.
func TestServeHangupLeavesSIGHUPNotIgnored(t *testing.T) {
	if signal.Ignored(syscall.SIGHUP) {
		t.Skip("this test process was started with SIGHUP ignored")
	}
	ctx, cancel := serveHangup(t.Context(), new(bytes.Buffer))
	defer cancel()
	if signal.Ignored(syscall.SIGHUP) {
		t.Fatal("serve away from a terminal set SIGHUP to ignored; want it caught and dropped")
	}
	if ctx.Err() != nil {
		t.Fatal("serve's context ended at once")
	}
}
