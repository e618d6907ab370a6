//go:build unix

package cli_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestServeSurvivesSIGHUP (docs/operations.md "Signals and exit codes"):
// sts has no reload, and a SIGHUP (an operator's kill -HUP or systemctl
// kill expecting one, a log rotation's postrotate, a closed terminal)
// killed the server at once: no drain of in-flight requests, and
// systemd's Restart=on-failure counts a SIGHUP death as clean, so it
// stayed down. It is ignored: the server keeps serving, and SIGTERM
// still stops it with exit 0.
func TestServeSurvivesSIGHUP(t *testing.T) {
	t.Parallel()
	stderr := new(syncBuffer)
	cmd, done, live := startServeChild(t, stderr, stderr)

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		t.Fatalf("serve ended on SIGHUP (%v); want it ignored:\n%s", err, stderr.String())
	case <-time.After(time.Second):
	}
	if !live() {
		t.Fatalf("serve stopped answering /livez after SIGHUP:\n%s", stderr.String())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatalf("serve after SIGHUP then SIGTERM exited %v, want 0:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
}

// startServeChild starts sts serve as a process of its own on a migrated
// database in a fresh directory, its log to stderr, and waits until it
// answers /livez (log shows what it wrote if it does not). done receives
// its exit; live asks /livez again. The process is killed at cleanup if
// it still runs.
func startServeChild(t *testing.T, stderr io.Writer, log fmt.Stringer) (cmd *exec.Cmd, done chan error, live func() bool) {
	t.Helper()
	dir := t.TempDir()
	sqlitetest.WriteMigrated(t, filepath.Join(dir, "sts.db"))
	addr := freeAddr(t)
	cmd = stsCommand("serve", "--listen", addr, "--data-dir", dir)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	live = func() bool {
		resp, err := http.Get("http://" + addr + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	for deadline := time.Now().Add(30 * time.Second); !live(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /livez:\n%s", log.String())
		}
	}
	return cmd, done, live
}
