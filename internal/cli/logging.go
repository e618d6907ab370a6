package cli

import (
	"io"
	"log/slog"
	"os"

	"github.com/opensts/sts/internal/config"
)

// newLogger returns the process logger: text for a person at a terminal,
// JSON for a log collector, unless log.format says otherwise.
func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config; info on error
	opts := &slog.HandlerOptions{Level: level}
	text := c.Format == "text" || (c.Format == "auto" && isTerminal(w))
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal reports whether w is a terminal (isTTY): a character device
// that is none, such as /dev/null, is a log collector's, not a person's.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTTY(f)
}
