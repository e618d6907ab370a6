//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package cli

import "os"

// isTTY reports whether f is a terminal: never on this system, so serve
// ignores SIGHUP there.
func isTTY(*os.File) bool { return false }
