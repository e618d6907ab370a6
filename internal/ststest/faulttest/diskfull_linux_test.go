//go:build linux

package faulttest

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid (prlimit(2),
// allowed without privileges on one's own processes while the soft limit
// stays below the hard one) and returns the soft limit it replaced.
func setFileSizeLimit(pid int, soft uint64) (uint64, error) {
	var old syscall.Rlimit
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE,
		0, uintptr(unsafe.Pointer(&old)), 0, 0); e != 0 {
		return 0, e
	}
	lim := syscall.Rlimit{Cur: soft, Max: old.Max}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE,
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		return 0, e
	}
	return old.Cur, nil
}

// get answers a GET of n's path: the status and the body.
func (n *node) get(path string) (int, string) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(n.base() + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// diskFull fills the disk under the running server and its ledger's load:
// the server's file size limit (RLIMIT_FSIZE) drops to one byte, so every
// write to the SQLite database and its WAL fails as on a full disk (with
// EFBIG rather than ENOSPC; the process ignores SIGXFSZ, as Go programs
// do). While it lasts, /readyz must name storage_write, writes must be
// refused (the ledger's checks then find that no write answered 200 was
// lost), and /livez, the JWKS and reads must keep answering; once the
// limit is lifted, /readyz turns ready and writes are acknowledged again.
// It returns the /readyz answer while full and how long the server took to
// report it.
func diskFull(t *testing.T, n *node, w *writer) (readyz string, noticed time.Duration) {
	t.Helper()
	w.l.mu.Lock()
	refusedBefore, ackBefore := w.l.refused, len(w.l.clients)
	w.l.mu.Unlock()
	old, err := setFileSizeLimit(n.cmd.Process.Pid, 1)
	if err != nil {
		t.Fatalf("prlimit RLIMIT_FSIZE: %v", err)
	}
	full := time.Now()
	for {
		status, body := n.get("/readyz")
		if status == http.StatusServiceUnavailable && strings.Contains(body, "storage_write") {
			readyz, noticed = body, time.Since(full)
			break
		}
		if time.Since(full) > 10*time.Second {
			t.Errorf("disk full: /readyz = %d %s after %s, want 503 naming storage_write within the probe interval (5 s)", status, body, time.Since(full))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, path := range []string{"/livez", "/.well-known/jwks.json"} {
		if status, body := n.get(path); status != 200 {
			t.Errorf("disk full: GET %s = %d %s, want 200", path, status, tail(body, 200))
		}
	}
	w.l.mu.Lock()
	stored := w.l.clients[:min(1, len(w.l.clients))]
	w.l.mu.Unlock()
	for _, id := range stored {
		cs := stsv1connect.NewClientServiceClient(w.api(), n.base())
		if _, err := cs.GetClient(t.Context(), &stsv1.GetClientRequest{ClientId: id}); err != nil {
			t.Errorf("disk full: reading a stored client: %v", err)
		}
	}
	w.l.mu.Lock()
	refusedFull, ackFull := w.l.refused-refusedBefore, len(w.l.clients)
	w.l.mu.Unlock()
	if _, err := setFileSizeLimit(n.cmd.Process.Pid, old); err != nil {
		t.Fatalf("prlimit RLIMIT_FSIZE: %v", err)
	}
	if refusedFull == 0 {
		t.Error("disk full: no write was refused: the load did not reach the full disk")
	}
	n.waitReady(10 * time.Second)
	// Writes work again: the load gets a create acknowledged.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		w.l.mu.Lock()
		again := len(w.l.clients) > ackFull
		w.l.mu.Unlock()
		if again {
			break
		}
		if time.Now().After(deadline) {
			t.Error("disk full: no write acknowledged within 5 s of space returning")
			break
		}
	}
	t.Logf("disk full: /readyz %s after %s; %d writes refused, %d clients acknowledged meanwhile (before the first write failed)",
		strings.TrimSpace(readyz), noticed.Round(time.Millisecond), refusedFull, ackFull-ackBefore)
	return readyz, noticed
}
