//go:build linux

package faulttest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// sqliteFS is a small ext4 file system of its own, in an image file on a
// loop device, for SQLite's data directory: it fills up with a real ENOSPC
// (a ballast file) and turns read-only with a real EROFS (an ext4 error
// with errors=remount-ro, as a failing disk makes the kernel do), under a
// running server. Mounting needs root; everything is unmounted when the
// test ends, whatever its outcome.
type sqliteFS struct {
	t   *testing.T
	img string // the image file
	dir string // where it is mounted
	dev string // the loop device's name (loop0), for /sys/fs/ext4
}

// sqliteFSSize is the image's size: the short run's database and WAL take
// a few MiB, the long run's about 10.
const sqliteFSSize = 64 << 20

// newSQLiteFS makes and mounts the file system, or returns nil and the
// reason it cannot (not root, no ext4 tools, no loop device).
func newSQLiteFS(t *testing.T) (*sqliteFS, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, "not root: a file system of its own needs mount(8)"
	}
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, tool + " not found"
		}
	}
	base := t.TempDir()
	fs := &sqliteFS{t: t, img: filepath.Join(base, "fs.img"), dir: filepath.Join(base, "data")}
	if err := os.Mkdir(fs.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fs.img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(fs.img, sqliteFSSize); err != nil {
		t.Fatal(err)
	}
	// -m 0: no blocks reserved for root, so the server (root here) meets
	// ENOSPC when the ballast does.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", fs.img).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("mkfs.ext4: %v: %s", err, out)
	}
	if err := fs.mount(); err != nil {
		return nil, err.Error()
	}
	t.Cleanup(fs.unmount)
	return fs, ""
}

// mount mounts the image at dir and finds its loop device.
func (fs *sqliteFS) mount() error {
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", fs.img, fs.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -o loop: %v: %s", err, strings.TrimSpace(string(out)))
	}
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 1 && fields[1] == fs.dir {
			fs.dev = filepath.Base(fields[0])
		}
	}
	if fs.dev == "" {
		return errors.New("mounted file system not in /proc/self/mounts")
	}
	return nil
}

// unmount unmounts dir (lazily if something still holds it open; the
// loop device goes with the last reference).
func (fs *sqliteFS) unmount() {
	if exec.Command("umount", fs.dir).Run() != nil {
		if out, err := exec.Command("umount", "-l", fs.dir).CombinedOutput(); err != nil {
			fs.t.Logf("umount -l %s: %v: %s", fs.dir, err, out)
		}
	}
}

// fillWithBallast writes a ballast file in dir until its file system is
// full (ENOSPC) and returns the ballast's path.
func fillWithBallast(dir string) (string, error) {
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return path, err
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return path, err
				}
				break
			}
		}
	}
	// The last blocks delayed allocation held back go too.
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		return path, err
	}
	return path, nil
}

// forceReadOnly makes ext4 record an error (the test hook
// /sys/fs/ext4/<dev>/trigger_fs_error): with errors=remount-ro the kernel
// turns the file system read-only at once, under the open files, as it
// does when a disk fails. Only unmounting, e2fsck and mounting again undo
// it (remount,rw is refused).
//
// The error is recorded with the file system frozen, between two commits
// (docs/security.md D-25): the freeze writes back what was written and
// commits the journal, and holds new writes until the thaw, which they
// then meet read-only. Recorded under running writes, the error aborted
// the journal transaction holding the block allocations of data just
// appended, and an fsync of that data in the instant before the kernel
// marked the file system read-only still returned success (Linux 6.18);
// after e2fsck the data was gone, and the ledger reported as sts's a loss
// of an acknowledged write that no program could have prevented
// (TestReadOnlyFaultLosesNoAcknowledgedAppend).
//
// Before Linux 6.12 ext4 marked the file system read-only itself when it
// recorded the error, and a thaw of a read-only file system left the
// freeze's locks held: every writer, the server's included, would hang
// until reboot. There the error is recorded without the freeze, as
// before, and TestReadOnlyFaultLosesNoAcknowledgedAppend skips.
func (fs *sqliteFS) forceReadOnly() error {
	if !freezeSafe() {
		return os.WriteFile(fs.trigger(), []byte("sts fault harness"), 0)
	}
	thaw, err := freeze(fs.dir)
	if err != nil {
		return err
	}
	err = os.WriteFile(fs.trigger(), []byte("sts fault harness"), 0)
	return errors.Join(err, thaw())
}

// freezeSafe reports whether the running kernel is Linux 6.12 or later,
// where a frozen ext4 file system that records an error thaws (see
// forceReadOnly).
func freezeSafe() bool {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return false
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	var major, minor int
	if n, _ := fmt.Sscanf(string(b), "%d.%d", &major, &minor); n != 2 {
		return false
	}
	return major > 6 || major == 6 && minor >= 12
}

// The ioctls of fsfreeze(8), _IOWR('X', 119, int) and _IOWR('X', 120, int)
// in the generic encoding of linux/fs.h (amd64, arm64).
const (
	ioctlFIFREEZE = 0xc0045877
	ioctlFITHAW   = 0xc0045878
)

// freeze freezes the file system mounted at dir (FIFREEZE) and returns the
// thaw (FITHAW).
func freeze(dir string) (thaw func() error, err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, d.Fd(), ioctlFIFREEZE, 0); e != 0 {
		d.Close()
		return nil, fmt.Errorf("freeze %s: %w", dir, e)
	}
	return func() error {
		defer d.Close()
		// Tried twice: a file system left frozen would hang every
		// writer and the unmount after it.
		var err error
		for range 2 {
			_, _, e := syscall.Syscall(syscall.SYS_IOCTL, d.Fd(), ioctlFITHAW, 0)
			if e == 0 || e == syscall.EINVAL { // EINVAL: not frozen (any more)
				return nil
			}
			err = fmt.Errorf("thaw %s: %w", dir, e)
		}
		return err
	}, nil
}

func (fs *sqliteFS) trigger() string {
	return filepath.Join("/sys/fs/ext4", fs.dev, "trigger_fs_error")
}

// repair is what an operator does after forceReadOnly, with the server
// stopped: unmount, e2fsck, mount again.
func (fs *sqliteFS) repair() error {
	if out, err := exec.Command("umount", fs.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("umount: %v: %s", err, out)
	}
	// Exit codes 1 and 2: errors corrected.
	out, err := exec.Command("e2fsck", "-f", "-y", fs.img).CombinedOutput()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() <= 2 {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("e2fsck: %v: %s", err, out)
	}
	return fs.mount()
}

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

// diskFull fills the disk under the running server and its ledger's load.
// With a file system of its own (fs), a ballast file fills it (ENOSPC);
// without one (not root), the server's file size limit (RLIMIT_FSIZE) drops
// to one byte, so every write to the database and its WAL fails with EFBIG
// instead (the process ignores SIGXFSZ, as Go programs do). The checks are
// underFault's; both must read `disk full` (the probe checks the files
// against the file size limit).
// Space returns by deleting the ballast (raising the limit).
func diskFull(t *testing.T, n *node, w *writer, fs *sqliteFS, why string) string {
	if fs == nil {
		t.Logf("disk full: no file system of its own (%s): RLIMIT_FSIZE instead, EFBIG rather than ENOSPC", why)
		var old uint64
		return underFault(t, n, w, "disk_full_fsize", "disk full", func() error {
			var err error
			old, err = setFileSizeLimit(n.cmd.Process.Pid, 1)
			return err
		}, func() error {
			_, err := setFileSizeLimit(n.cmd.Process.Pid, old)
			return err
		})
	}
	var ballast string
	return underFault(t, n, w, "disk_full", "disk full", func() error {
		var err error
		ballast, err = fillWithBallast(fs.dir)
		return err
	}, func() error { return os.Remove(ballast) })
}

// readOnly turns the data directory's file system read-only under the
// running server and its load (an ext4 error, errors=remount-ro): the
// checks are underFault's, the class `read-only`. Writes come back only
// with the file system repaired, which needs the server stopped: the
// returned repair runs after the cycle's kill, and the restart must find
// every acknowledged write and an integrity_check clean.
func readOnly(t *testing.T, n *node, w *writer, fs *sqliteFS, why string) (string, func()) {
	if fs == nil {
		t.Skipf("read-only file system: %s", why)
	}
	if _, err := os.Stat(fs.trigger()); err != nil {
		t.Skipf("read-only file system: no ext4 error hook: %v", err)
	}
	figures := underFault(t, n, w, "read_only", "read-only", fs.forceReadOnly, nil)
	return figures, func() {
		if err := fs.repair(); err != nil {
			n.t.Fatalf("read-only file system: repair: %v", err)
		}
	}
}

// underFault applies a storage fault under the running server and its
// ledger's load (start), then checks: /readyz answers 503 naming
// storage_write within 10 s (with class, when not ""), writes are refused
// (the ledger's checks then find that no write answered 200 was lost), and
// /livez, the JWKS and a read of a stored client keep answering. With end
// not nil it undoes the fault and checks that /readyz turns ready within
// 10 s and a write is acknowledged within 5 s. It returns the figures for
// the FAULTS line: the /readyz answer and how long the server took to give
// it, and (with end) how long until ready again.
func underFault(t *testing.T, n *node, w *writer, name, class string, start, end func() error) string {
	t.Helper()
	w.l.mu.Lock()
	refusedBefore, ackBefore := w.l.refused, len(w.l.clients)
	w.l.mu.Unlock()
	if err := start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	began := time.Now()
	var readyz string
	var noticed time.Duration
	for {
		status, body := n.get("/readyz")
		if status == http.StatusServiceUnavailable && strings.Contains(body, "storage_write") {
			readyz, noticed = body, time.Since(began)
			break
		}
		if time.Since(began) > 10*time.Second {
			t.Errorf("%s: /readyz = %d %s after %s, want 503 naming storage_write within the probe interval (5 s)", name, status, body, time.Since(began))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var answer struct {
		Failing map[string]string `json:"failing"`
	}
	_ = json.Unmarshal([]byte(readyz), &answer)
	if got := answer.Failing["storage_write"]; class != "" && readyz != "" && got != class {
		t.Errorf("%s: /readyz names storage_write %q (%s), want %q", name, got, strings.TrimSpace(readyz), class)
	}
	for _, path := range []string{"/livez", "/.well-known/jwks.json"} {
		if status, body := n.get(path); status != 200 {
			t.Errorf("%s: GET %s = %d %s, want 200", name, path, status, tail(body, 200))
		}
	}
	w.l.mu.Lock()
	stored := w.l.clients[:min(1, len(w.l.clients))]
	w.l.mu.Unlock()
	for _, id := range stored {
		cs := stsv1connect.NewClientServiceClient(w.api(), n.base())
		if _, err := cs.GetClient(t.Context(), &stsv1.GetClientRequest{ClientId: id}); err != nil {
			t.Errorf("%s: reading a stored client: %v", name, err)
		}
	}
	// Let the load meet the fault for a moment after /readyz saw it.
	time.Sleep(300 * time.Millisecond)
	w.l.mu.Lock()
	refused, ackFault := w.l.refused-refusedBefore, len(w.l.clients)
	w.l.mu.Unlock()
	if refused == 0 {
		t.Errorf("%s: no write was refused: the load did not meet the fault", name)
	}
	figures := fmt.Sprintf(" %s_noticed=%s %s_readyz=%q", name, noticed.Round(time.Millisecond), name, answer.Failing["storage_write"])
	t.Logf("%s: /readyz %s after %s; %d writes refused, %d clients acknowledged meanwhile (before the first write failed)",
		name, strings.TrimSpace(readyz), noticed.Round(time.Millisecond), refused, ackFault-ackBefore)
	if end == nil {
		return figures
	}
	if err := end(); err != nil {
		t.Fatalf("%s: ending the fault: %v", name, err)
	}
	ended := time.Now()
	if !n.ready(10 * time.Second) {
		t.Errorf("%s: /readyz not 200 within 10 s of the fault's end", name)
	}
	readyAgain := time.Since(ended)
	// Writes work again: the load gets a create acknowledged.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		w.l.mu.Lock()
		again := len(w.l.clients) > ackFault
		w.l.mu.Unlock()
		if again {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: no write acknowledged within 5 s of the fault's end", name)
			break
		}
	}
	return figures + fmt.Sprintf(" %s_ready_again=%s", name, readyAgain.Round(time.Millisecond))
}
