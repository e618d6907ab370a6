package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext is the signal handling of the sts command: SIGINT and
// SIGTERM cancel the returned context (serve drains and exits 0), and
// SIGHUP is ignored. sts has no reload (the configuration is read at
// start; a renewed TLS certificate is picked up on its own), and Go's
// default for SIGHUP ends the process at once, without draining, which
// systemd's Restart=on-failure counts as a clean exit and does not
// restart (docs/operations.md "Signals and exit codes").
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	signal.Ignore(syscall.SIGHUP)
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
