package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"

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

// readTokenFile reads a bearer token from path, trimmed of surrounding
// white space. Like ssh with a private key, it refuses a regular file
// that its group or others may read or write: the token is a credential.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", usageError{fmt.Errorf("--token-file: %w", err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", usageError{fmt.Errorf("--token-file: %w", err)}
	}
	if fi.IsDir() {
		return "", usageError{fmt.Errorf("--token-file %s is a directory", path)}
	}
	if perm := fi.Mode().Perm(); fi.Mode().IsRegular() && perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", usageError{fmt.Errorf("--token-file %s: permissions %04o are too open: a bearer token must be readable by its owner only (chmod 600 %s)", path, perm, path)}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
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
		return nil, usageError{fmt.Errorf("--ca-file: %w", err)}
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
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
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
