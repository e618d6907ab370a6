//go:build linux

package cli_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal and returns its two ends; what is
// written to the terminal end is read from the other, drained into out.
func openPTY(t *testing.T) (tty *os.File, out *syncBuffer) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	var n uint32
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	out = new(syncBuffer)
	go io.Copy(out, ptm)
	return tty, out
}

// hupDefaultInChildren makes the commands these tests start begin with
// SIGHUP at its default action, whatever this test binary was started
// with. A process started with SIGHUP ignored (nohup, a CI runner in the
// background) passes that on through exec, and sts keeps it ignored, as
// it should under nohup; a signal this process catches is reset to the
// default in the child instead.
var hupDefaultInChildren = sync.OnceFunc(func() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
})

// TestServeOnTerminalStopsOnSIGHUP (docs/operations.md "Signals and exit
// codes"): a foreground sts serve whose log goes to a terminal stops
// when that terminal closes (SIGHUP) rather than outlive it holding its
// port with its log going nowhere: as on SIGTERM, it drains and exits 0.
func TestServeOnTerminalStopsOnSIGHUP(t *testing.T) {
	t.Parallel()
	tty, stderr := openPTY(t)
	hupDefaultInChildren()
	cmd, done, _ := startServeChild(t, tty, stderr)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("serve on a terminal exited %v on SIGHUP; want it to drain and exit 0:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve on a terminal still runs 30s after SIGHUP; want it to stop:\n%s", stderr.String())
	}
}

// TestOtherCommandsDieOnSIGHUP (docs/operations.md "Signals and exit
// codes"): only serve ignores SIGHUP; any other command (here one reading
// a token from a standard input that never ends) dies on it, as a
// program started from a terminal that closes should.
func TestOtherCommandsDieOnSIGHUP(t *testing.T) {
	t.Parallel()
	hupDefaultInChildren()
	cmd := stsCommand("pool", "test", "--pool", "ci", "--token", "-")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(time.Second) // the child reads its standard input
	select {
	case err := <-done:
		t.Fatalf("sts pool test ended before SIGHUP: %v\n%s", err, stderr.String())
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
			t.Errorf("sts pool test on SIGHUP = %v; want it killed by the signal", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("sts pool test ignored SIGHUP")
	}
}
