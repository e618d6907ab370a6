//go:build unix

package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mkfifo makes a named pipe at name with exactly mode (whatever the
// umask) and writes content to it once a reader opens it.
func mkfifo(t *testing.T, name, content string, mode uint32) {
	t.Helper()
	if err := syscall.Mkfifo(name, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	go func() {
		w, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		_, _ = w.WriteString(content)
	}()
}

// TestRemoteTokenFileFIFO: a token file may be a named pipe, and its
// permissions are checked like a regular file's: a FIFO others may write
// would feed the command their token, sent as the operator's credential
// (docs/security.md T-169).
func TestRemoteTokenFileFIFO(t *testing.T) {
	t.Parallel()
	api := startTLSAPI(t)
	const token = "sts_pat_ThroughTheFIFO000000000000000000"

	t.Run("owner only", func(t *testing.T) {
		remoteEnv(t)
		fifo := filepath.Join(t.TempDir(), "token")
		mkfifo(t, fifo, token+"\n", 0o600)
		code, out, errOut := runCLI(t, "org", "list", "--server", api.url, "--ca-file", api.caFile, "--token-file", fifo)
		if code != 0 || !strings.Contains(out, "acme") {
			t.Fatalf("--token-file FIFO 0600 = %d, stdout %q, stderr %q", code, out, errOut)
		}
		if s := api.seen(); len(s) == 0 || s[len(s)-1] != "Bearer "+token {
			t.Errorf("Authorization = %q, want the FIFO's token", s)
		}
	})
	t.Run("others may write", func(t *testing.T) {
		remoteEnv(t)
		fifo := filepath.Join(t.TempDir(), "token")
		mkfifo(t, fifo, "sts_pat_WrittenByAnotherUser000000000000\n", 0o666)
		n := len(api.seen())
		code, _, errOut := runCLI(t, "org", "list", "--server", api.url, "--ca-file", api.caFile, "--token-file", fifo)
		if code != 2 || !strings.Contains(errOut, "too open") {
			t.Errorf("--token-file FIFO 0666 = %d, stderr %q; want exit 2, too open", code, errOut)
		}
		if len(api.seen()) != n {
			t.Error("a request was sent")
		}
		if w, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil { // let the writer go
			w.Close()
		}
	})
}

// TestRemoteTokenFileTerminal: a terminal (a character device such as
// /dev/tty, or /dev/stdin at a prompt) is read, whatever its mode: a
// terminal is 0620 on most systems (group tty may write to its screen,
// not to its input), and was refused as "too open" with advice (chmod 600
// /dev/stdin) that does not fit (docs/security.md T-169). The device here
// has /dev/null's numbers: it reads as empty, which is what it is refused
// for.
func TestRemoteTokenFileTerminal(t *testing.T) {
	t.Parallel()
	dev := filepath.Join(t.TempDir(), "pts")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o620, 1<<8|3); err != nil {
		t.Skipf("mknod (needs root): %v", err)
	}
	if err := os.Chmod(dev, 0o620); err != nil {
		t.Fatal(err)
	}
	remoteEnv(t)
	code, _, errOut := runCLI(t, "org", "list", "--server", "https://127.0.0.1:1", "--token-file", dev)
	if code != 2 || !strings.Contains(errOut, "is empty") {
		t.Errorf("--token-file on a character device 0620 = %d, stderr %q; want it read (exit 2, is empty)", code, errOut)
	}
}

// TestRemoteTokenFileForeignOwner: like ssh with a private key, a token
// file (a named pipe too) must be owned by the user who runs the command
// or by root: its owner may write to it, or chmod it, at will. Run as
// root, a 0600 FIFO or file of another user was read as the operator's
// token (docs/security.md T-169).
func TestRemoteTokenFileForeignOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	api := startTLSAPI(t)
	const nobody = 65534
	for _, fifo := range []bool{true, false} {
		name := map[bool]string{true: "FIFO", false: "file"}[fifo]
		t.Run(name, func(t *testing.T) {
			remoteEnv(t)
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "token")
			const token = "sts_pat_FromNobody0000000000000000000000\n"
			if fifo {
				mkfifo(t, path, token, 0o600)
			} else if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			n := len(api.seen())
			code, _, errOut := runCLI(t, "org", "list", "--server", api.url, "--ca-file", api.caFile, "--token-file", path)
			if code != 2 || !strings.Contains(errOut, "owned by uid 65534") {
				t.Errorf("--token-file %s owned by uid %d = %d, stderr %q; want exit 2, owned by uid %d", name, nobody, code, errOut, nobody)
			}
			if len(api.seen()) != n {
				t.Error("a request was sent with another user's token")
			}
			if fifo {
				if w, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil { // let the writer go
					w.Close()
				}
			}
		})
	}
	// Root's own file is accepted (checked by the other tests, which run
	// as root here): owner 0 is allowed beside the effective uid.
}
