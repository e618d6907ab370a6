package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext is the signal handling of the sts command: SIGINT and
// SIGTERM cancel the returned context (serve drains and exits 0). SIGHUP
// keeps Go's default, which ends a command at once, except in serve
// (serveHangup) (docs/operations.md "Signals and exit codes").
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// serveHangup is serve's SIGHUP. Where its log goes to a terminal, serve
// runs in the foreground of a session, and a SIGHUP means that terminal
// closed: it stops as on SIGTERM (the returned context is cancelled: it
// drains and exits 0) rather than outlive the terminal, holding its port,
// its log going nowhere. Elsewhere (systemd, a container, a log file) sts
// has no reload and a SIGHUP (kill -HUP, a log rotation's postrotate) is
// ignored: Go's default ends the process at once, without draining, and
// systemd's Restart=on-failure counts that as a clean exit. A SIGHUP
// ignored when sts started (nohup) stays ignored.
func serveHangup(parent context.Context, stderr io.Writer) (context.Context, context.CancelFunc) {
	if signal.Ignored(syscall.SIGHUP) {
		return context.WithCancel(parent)
	}
	if f, ok := stderr.(*os.File); ok && isTTY(f) {
		return signal.NotifyContext(parent, syscall.SIGHUP)
	}
	// Caught and dropped rather than signal.Ignore: the same for this
	// process, but an ignored signal stays ignored in every process it
	// starts (a test binary running serve starts sts commands), a caught
	// one is back at its default there.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	return context.WithCancel(parent)
}
