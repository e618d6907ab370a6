//go:build linux

package cli

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/opensts/sts/internal/config"
)

// TestLogFormatAutoNeedsATerminal: log.format auto is text only on a
// terminal. Standard error sent to /dev/null, a character device but no
// terminal (a service manager's default, `2>/dev/null`), got text as if a
// person were reading; it gets JSON, as a pipe or a file does, and the
// terminal still gets text.
func TestLogFormatAutoNeedsATerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if _, ok := newLogger(config.LogConfig{Format: "auto", Level: "info"}, null).Handler().(*slog.JSONHandler); !ok {
		t.Errorf("log.format auto with standard error on %s: not JSON", os.DevNull)
	}

	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptm.Close()
	var n uint32
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if _, ok := newLogger(config.LogConfig{Format: "auto", Level: "info"}, tty).Handler().(*slog.TextHandler); !ok {
		t.Errorf("log.format auto with standard error on a terminal: not text")
	}
}
