package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Remote mode's credential and trust come from files as well as from the
// environment (docs/cli.md "Credentials and trust"): --token-file (or
// STS_TOKEN_FILE) instead of STS_TOKEN, which shows in /proc/*/environ and
// shell history, and --ca-file (or STS_CA_FILE), a PEM bundle the client
// trusts beside the system roots.

// maxTokenFile bounds a token file: a PAT or an access token is far
// shorter, and a file this long is not one.
const maxTokenFile = 16 << 10

// maxCAFile bounds a CA bundle (the system bundles are about 200 KiB).
const maxCAFile = 4 << 20

// remoteToken is the credential of a remote command: STS_TOKEN, or the
// token in file (--token-file, or STS_TOKEN_FILE), never both.
func remoteToken(cmd *cobra.Command, file string) (string, error) {
	env := strings.TrimSpace(environOf(cmd).getenv("STS_TOKEN"))
	file = strings.TrimSpace(file)
	switch {
	case file != "" && env != "":
		return "", usageError{errors.New("both STS_TOKEN and --token-file (or STS_TOKEN_FILE) are set: give the credential one way")}
	case file != "":
		return readTokenFile(file)
	case env == "":
		return "", usageError{errors.New("--server needs a credential: --token-file FILE, STS_TOKEN_FILE or STS_TOKEN (a PAT or access token with sts:admin)")}
	}
	if err := checkToken(env); err != nil {
		return "", usageError{fmt.Errorf("STS_TOKEN %v", err)}
	}
	return env, nil
}

// tokenFileWait bounds the wait for a token file that is a pipe (a FIFO,
// or <(command)) to be written: one with no writer would otherwise block
// the command for ever.
const tokenFileWait = 10 * time.Second

// readTokenFile reads a bearer token from path, trimmed of surrounding
// white space. Like ssh with a private key, it refuses a file (a FIFO too)
// that its group or others may read or write, or that another user owns:
// the token is a credential. A terminal is read whatever its mode.
func readTokenFile(path string) (string, error) {
	return readTokenFileWithin(path, tokenFileWait)
}

// readTokenFileWithin is readTokenFile waiting at most wait for a pipe's
// writer. The file is opened without blocking, which a FIFO with no
// writer does, and read until end of file, the limit or the wait is over.
func readTokenFileWithin(path string, wait time.Duration) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", usageError{fmt.Errorf("--token-file %s", openError(path, err))}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", usageError{fmt.Errorf("--token-file: %w", err)}
	}
	if fi.IsDir() {
		return "", usageError{fmt.Errorf("--token-file %s is a directory", path)}
	}
	fifo := fi.Mode()&fs.ModeNamedPipe != 0
	// A regular file or a FIFO: one others may write feeds the command
	// their token; an anonymous pipe (<(…)) is 0600. A terminal's mode
	// (a character device: /dev/tty, /dev/stdin at a prompt; 0620 on
	// most systems) says who may write to its screen, not to its input:
	// it is read as it is.
	if fi.Mode().IsRegular() || fifo {
		// Like ssh: a file another user owns is theirs to write, or to
		// chmod, at will (a root operator would send their token).
		if uid, ok := fileOwner(fi); ok && uid != 0 && uid != os.Geteuid() {
			return "", usageError{fmt.Errorf("--token-file %s is owned by uid %d, not by you (uid %d) or root: another user may change it; use a file of your own", path, uid, os.Geteuid())}
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
			return "", usageError{fmt.Errorf("--token-file %s: permissions %04o are too open: a bearer token must be readable by its owner only (chmod 600 %s)", path, perm, path)}
		}
	}
	b, err := readWithin(f, fifo, maxTokenFile+1, wait)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if !fifo {
			return "", usageError{fmt.Errorf("--token-file %s: nothing read within %s", path, wait)}
		}
		return "", usageError{fmt.Errorf("--token-file %s: nothing written to the pipe within %s", path, wait)}
	}
	if err != nil {
		return "", usageError{fmt.Errorf("--token-file: read %s: %w", path, err)}
	}
	if len(b) > maxTokenFile {
		return "", usageError{fmt.Errorf("--token-file %s is longer than %d bytes: want the token alone", path, maxTokenFile)}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", usageError{fmt.Errorf("--token-file %s is empty", path)}
	}
	if err := checkToken(tok); err != nil {
		return "", usageError{fmt.Errorf("--token-file %s %v", path, err)}
	}
	return tok, nil
}

// readWithin reads f to its end, at most limit bytes, within wait. A FIFO
// opened without blocking reads as empty until a writer opens it, so an
// empty read of one is tried again until the wait is over.
func readWithin(f *os.File, fifo bool, limit int64, wait time.Duration) ([]byte, error) {
	deadline := time.Now().Add(wait)
	_ = f.SetReadDeadline(deadline) // a regular file has no deadline, and needs none
	for {
		b, err := io.ReadAll(io.LimitReader(f, limit))
		if err != nil || len(b) > 0 || !fifo {
			return b, err
		}
		if time.Now().After(deadline) {
			return nil, os.ErrDeadlineExceeded
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openError is the error of opening the token or CA file at path, naming
// path only when it cannot be the token itself, given by mistake instead
// of the file's name (--token-file "$TOKEN", --ca-file "$STS_TOKEN"): no
// token holds a "/", and the sts tokens start with sts_ (a PAT) or eyJ
// (a JWT).
func openError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	base := filepath.Base(path)
	if !strings.Contains(path, "/") || strings.HasPrefix(base, "sts_") || strings.HasPrefix(base, "eyJ") {
		return fmt.Errorf("(the name given, not printed: it may be the token itself): %w", err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// checkToken refuses what an Authorization header cannot carry; the
// error never includes the token.
func checkToken(tok string) error {
	if strings.ContainsAny(tok, "\r\n") {
		return errors.New("holds more than one line: want the token alone, on one line")
	}
	for _, r := range tok {
		if r <= ' ' || r >= 0x7f {
			return errors.New("holds a space, a control character or a non-ASCII character, which no token has")
		}
	}
	return nil
}

// caTransport is http.DefaultTransport trusting, beside the system roots,
// the certificates of the PEM bundle at path; the process's default
// transport and every other client are left alone.
func caTransport(path string) (http.RoundTripper, error) {
	f, err := os.Open(path)
	if err != nil {
		// Named like a token file: the token pasted here by mistake
		// must not be printed either (docs/security.md T-169).
		return nil, usageError{fmt.Errorf("--ca-file %s", openError(path, err))}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, usageError{fmt.Errorf("--ca-file: read %s: %w", path, err)}
	}
	if len(b) > maxCAFile {
		return nil, usageError{fmt.Errorf("--ca-file %s is longer than %d bytes", path, maxCAFile)}
	}
	var certs []*x509.Certificate
	begin := []byte("-----BEGIN")
	for rest := b; ; {
		i := bytes.Index(rest, begin)
		if i < 0 {
			break
		}
		// pem.Decode skips a block it cannot decode (no END line, bad
		// base64) for the next one: a block it consumed must hold one
		// BEGIN line, its own.
		block, next := pem.Decode(rest[i:])
		if block == nil || bytes.Count(rest[i:len(rest)-len(next)], begin) != 1 {
			return nil, usageError{fmt.Errorf("--ca-file %s: block %d is not a complete PEM block (a missing -----END line, or bad base64)", path, len(certs)+1)}
		}
		rest = next
		if block.Type != "CERTIFICATE" {
			return nil, usageError{fmt.Errorf("--ca-file %s: block %d is a %s, want only CERTIFICATE blocks", path, len(certs)+1, block.Type)}
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, usageError{fmt.Errorf("--ca-file %s: certificate %d: %w", path, len(certs)+1, err)}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, usageError{fmt.Errorf("--ca-file %s: no PEM certificate (want -----BEGIN CERTIFICATE----- blocks)", path)}
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}
