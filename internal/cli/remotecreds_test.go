package cli_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// tlsAPI is an HTTPS server on loopback, under a certificate of its own
// CA (in caFile, PEM), that answers ListOrganizations and
// ListHostAuthenticationTokens and records the Authorization header of
// every request.
type tlsAPI struct {
	url    string
	caFile string
	mu     sync.Mutex
	auth   []string
}

type tlsOrgs struct {
	stsv1connect.UnimplementedOrganizationServiceHandler
}

func (tlsOrgs) ListOrganizations(context.Context, *stsv1.ListOrganizationsRequest) (*stsv1.ListOrganizationsResponse, error) {
	return &stsv1.ListOrganizationsResponse{
		Organizations: []*stsv1.Organization{{Id: "org-1", Name: "acme"}}}, nil
}

type tlsHostTokens struct {
	gitpodv1connect.UnimplementedRunnerConfigurationServiceHandler
}

func (tlsHostTokens) ListHostAuthenticationTokens(context.Context, *gitpodv1.ListHostAuthenticationTokensRequest) (*gitpodv1.ListHostAuthenticationTokensResponse, error) {
	return &gitpodv1.ListHostAuthenticationTokensResponse{}, nil
}

func (a *tlsAPI) record(h http.Header) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.auth = append(a.auth, h.Get("Authorization"))
}

// seen is the Authorization header of every request so far.
func (a *tlsAPI) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.auth...)
}

func startTLSAPI(t *testing.T) *tlsAPI {
	t.Helper()
	api := &tlsAPI{}
	mux := http.NewServeMux()
	mux.Handle(stsv1connect.NewOrganizationServiceHandler(tlsOrgs{}))
	mux.Handle(gitpodv1connect.NewRunnerConfigurationServiceHandler(tlsHostTokens{}))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.record(r.Header)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	api.url = srv.URL
	api.caFile = filepath.Join(t.TempDir(), "ca.pem")
	writeMode(t, api.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})), 0o644)
	return api
}

// writeMode writes content to name with exactly mode (whatever the umask).
func writeMode(t *testing.T, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

// remoteEnv clears the remote variables of t's runs.
func remoteEnv(t *testing.T) {
	for _, k := range []string{"STS_SERVER", "STS_TOKEN", "STS_TOKEN_FILE", "STS_CA_FILE"} {
		setenv(t, k, "")
	}
}

// TestRemoteTokenFileAndCAFile: remote mode reads its credential from a
// file (--token-file, STS_TOKEN_FILE) once, trimmed, and trusts a private
// CA given as a PEM bundle (--ca-file, STS_CA_FILE), over real HTTPS on
// loopback; the admin nouns and host-token alike (docs/cli.md "Credentials
// and trust").
func TestRemoteTokenFileAndCAFile(t *testing.T) {
	t.Parallel()
	api := startTLSAPI(t)
	const token = "sts_pat_FromAFile0000000000000000000000000"
	tokFile := filepath.Join(t.TempDir(), "token")
	writeMode(t, tokFile, "  "+token+"\r\n\n", 0o600)

	t.Run("flags", func(t *testing.T) {
		remoteEnv(t)
		code, out, errOut := runCLI(t, "org", "list", "--server", api.url, "--token-file", tokFile, "--ca-file", api.caFile)
		if code != 0 || !strings.Contains(out, "acme") {
			t.Fatalf("org list with --token-file and --ca-file = %d, stdout %q, stderr %q", code, out, errOut)
		}
		if got := api.seen(); len(got) == 0 || got[len(got)-1] != "Bearer "+token {
			t.Errorf("Authorization = %q, want the trimmed token of the file", got)
		}
		if strings.Contains(out+errOut, token) {
			t.Error("the token was printed")
		}
	})
	t.Run("environment", func(t *testing.T) {
		remoteEnv(t)
		setenv(t, "STS_SERVER", api.url)
		setenv(t, "STS_TOKEN_FILE", tokFile)
		setenv(t, "STS_CA_FILE", api.caFile)
		code, out, errOut := runCLI(t, "org", "list", "-o", "json")
		if code != 0 || !strings.Contains(out, `"acme"`) {
			t.Fatalf("org list with STS_TOKEN_FILE and STS_CA_FILE = %d, stdout %q, stderr %q", code, out, errOut)
		}
		if got := api.seen(); got[len(got)-1] != "Bearer "+token {
			t.Errorf("Authorization = %q", got[len(got)-1])
		}
	})
	t.Run("pipe", func(t *testing.T) {
		// --token-file <(pass show sts): a pipe has no permissions to check.
		if runtime.GOOS != "linux" {
			t.Skip("/dev/fd of a pipe: Linux")
		}
		remoteEnv(t)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		go func() { w.WriteString(token + "\n"); w.Close() }()
		code, _, errOut := runCLI(t, "org", "list", "--server", api.url, "--ca-file", api.caFile,
			"--token-file", fmt.Sprintf("/dev/fd/%d", r.Fd()))
		if code != 0 {
			t.Fatalf("org list with --token-file of a pipe = %d, stderr %q", code, errOut)
		}
		if got := api.seen(); got[len(got)-1] != "Bearer "+token {
			t.Errorf("Authorization = %q", got[len(got)-1])
		}
	})
	t.Run("host-token", func(t *testing.T) {
		// --token-file of host-token create and update is the SCM token's
		// file: the credential comes from STS_TOKEN_FILE there.
		remoteEnv(t)
		setenv(t, "STS_TOKEN_FILE", tokFile)
		n := len(api.seen())
		code, out, errOut := runCLI(t, "host-token", "list", "--server", api.url, "--ca-file", api.caFile)
		if code != 0 {
			t.Fatalf("host-token list = %d, stdout %q, stderr %q", code, out, errOut)
		}
		if got := api.seen(); len(got) != n+1 || got[n] != "Bearer "+token {
			t.Errorf("Authorization = %q", got[n:])
		}
	})
	t.Run("system roots only without --ca-file", func(t *testing.T) {
		remoteEnv(t)
		setenv(t, "STS_TOKEN", token)
		n := len(api.seen())
		code, _, errOut := runCLI(t, "org", "list", "--server", api.url)
		if code == 0 || !strings.Contains(errOut, "certificate") {
			t.Fatalf("org list without --ca-file = %d, stderr %q; want a certificate error", code, errOut)
		}
		if len(api.seen()) != n {
			t.Error("the server answered a request it should not have received")
		}
		if c := http.DefaultTransport.(*http.Transport).TLSClientConfig; c != nil && c.RootCAs != nil {
			t.Error("--ca-file changed the process's default transport")
		}
	})
}

// TestRemoteCredentialFilesRefused: an unsafe, unreadable, empty or
// malformed token or CA file is refused with a message naming the file and
// what is wrong, before any request (exit 2).
func TestRemoteCredentialFilesRefused(t *testing.T) {
	t.Parallel()
	api := startTLSAPI(t)
	dir := t.TempDir()
	const token = "sts_pat_MustNotBePrinted00000000000000000000"
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		writeMode(t, p, content, mode)
		return p
	}
	good := file("good", token+"\n", 0o600)
	ca, err := os.ReadFile(api.caFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := string(ca)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"world-readable", nil, []string{"--token-file", file("open", token, 0o644)}, "too open"},
		{"group-readable via STS_TOKEN_FILE", map[string]string{"STS_TOKEN_FILE": file("group", token, 0o640)}, nil, "too open"},
		{"missing", nil, []string{"--token-file", filepath.Join(dir, "nope")}, "no such file"},
		{"empty", nil, []string{"--token-file", file("empty", " \n\n", 0o600)}, "is empty"},
		{"two lines", nil, []string{"--token-file", file("two", token+"\n"+token+"\n", 0o600)}, "one line"},
		{"the token given as the file's name", nil, []string{"--token-file", token}, "not printed"},
		{"both STS_TOKEN and a file", map[string]string{"STS_TOKEN": token}, []string{"--token-file", good}, "both"},
		{"CA missing", nil, []string{"--token-file", good, "--ca-file", filepath.Join(dir, "nope.pem")}, "no such file"},
		{"the token given as the CA file's name", nil, []string{"--token-file", good, "--ca-file", token}, "not printed"},
		{"the token given as STS_CA_FILE", map[string]string{"STS_CA_FILE": token}, []string{"--token-file", good}, "not printed"},
		{"CA empty", nil, []string{"--token-file", good, "--ca-file", file("empty.pem", "", 0o644)}, "no PEM certificate"},
		{"CA not PEM", nil, []string{"--token-file", good, "--ca-file", file("der.pem", "\x30\x82\x01\x0a", 0o644)}, "no PEM certificate"},
		{"CA bad certificate", map[string]string{"STS_CA_FILE": file("bad.pem",
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), 0o644)},
			[]string{"--token-file", good}, "certificate 1"},
		{"CA last block truncated", nil, []string{"--token-file", good, "--ca-file", file("cut.pem",
			caPEM+"-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG\n", 0o644)}, "block 2 is not a complete PEM block"},
		{"CA middle block without END", nil, []string{"--token-file", good, "--ca-file", file("mid.pem",
			"-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHHIG\n"+caPEM, 0o644)}, "block 1 is not a complete PEM block"},
		{"CA private key", nil, []string{"--token-file", good, "--ca-file", file("key.pem",
			string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("k")})), 0o644)}, "PRIVATE KEY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			remoteEnv(t)
			for k, v := range c.env {
				setenv(t, k, v)
			}
			n := len(api.seen())
			args := append([]string{"org", "list", "--server", api.url}, c.args...)
			code, out, errOut := runCLI(t, args...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Fatalf("sts %v = %d, stderr %q; want exit 2 and %q", args, code, errOut, c.want)
			}
			if len(api.seen()) != n {
				t.Error("a request was sent")
			}
			if strings.Contains(out+errOut, token) {
				t.Error("the token was printed")
			}
		})
	}
}

// TestRemoteServerURLRefused: a --server URL with credentials, a query or
// a fragment is refused before any request (exit 2), without printing the
// credentials: the query or fragment swallowed the API path, which
// Connect appends, so the request with the token went to / of the server
// with the method in its query string (and its access log), and user
// information beside the bearer token was silently dropped.
func TestRemoteServerURLRefused(t *testing.T) {
	t.Parallel()
	api := startTLSAPI(t)
	const secret = "sts_pat_InTheURL000000000000000000000000"
	host := strings.TrimPrefix(api.url, "https://")
	for _, server := range []string{
		host + "/?token=" + secret,
		"https://127.0.0.1:x/?token=" + secret,
		"HTTPS://" + host + "/?token=" + secret,
		"HTTPS://" + host + "/" + secret + "/?q",
		"https://" + secret + "@" + host,
		"https://admin:" + secret + "@" + host + "/",
		api.url + "/?token=" + secret,
		api.url + "/#" + secret,
	} {
		t.Run(strings.NewReplacer(secret, "SECRET", api.url, "URL", host, "HOST").Replace(server), func(t *testing.T) {
			remoteEnv(t)
			setenv(t, "STS_TOKEN", "sts_pat_TheCredential0000000000000000000")
			for _, cmd := range [][]string{{"org", "list"}, {"host-token", "list"}} {
				n := len(api.seen())
				code, out, errOut := runCLI(t, append(cmd, "--server", server, "--ca-file", api.caFile)...)
				if code != 2 || !strings.Contains(errOut, "--server") {
					t.Errorf("sts %v --server %s = %d, stderr %q; want exit 2", cmd, server, code, errOut)
				}
				if len(api.seen()) != n {
					t.Errorf("sts %v: a request was sent", cmd)
				}
				if strings.Contains(out+errOut, secret) {
					t.Errorf("sts %v printed the URL's secret: %q", cmd, errOut)
				}
			}
		})
	}
}

// TestRemoteServerSchemeAnyCase: the scheme of --server is case-insensitive
// (RFC 3986 section 3.1), as for every URL parser.
func TestRemoteServerSchemeAnyCase(t *testing.T) {
	t.Parallel()
	api := startTLSAPI(t)
	remoteEnv(t)
	const token = "sts_pat_TheCredential0000000000000000000"
	setenv(t, "STS_TOKEN", token)
	server := "HTTPS://" + strings.TrimPrefix(api.url, "https://")
	code, out, errOut := runCLI(t, "org", "list", "--server", server, "--ca-file", api.caFile)
	if code != 0 || !strings.Contains(out, "acme") {
		t.Fatalf("--server %s = %d, stdout %q, stderr %q", server, code, out, errOut)
	}
	if s := api.seen(); len(s) == 0 || s[len(s)-1] != "Bearer "+token {
		t.Errorf("Authorization = %q, want the token", s)
	}
}

// TestRemoteFlagsNeedServer: --token-file or --ca-file without --server
// is a usage error, not a command silently run on the database.
func TestRemoteFlagsNeedServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	writeMode(t, tok, "sts_pat_x\n", 0o600)
	for _, args := range [][]string{{"--token-file", tok}, {"--ca-file", tok}} {
		remoteEnv(t)
		code, out, errOut := runCLI(t, append([]string{"org", "list", "--data-dir", dir}, args...)...)
		if code != 2 || !strings.Contains(errOut, args[0]+" needs --server") {
			t.Errorf("org list %v without --server = %d, stdout %q, stderr %q; want exit 2", args, code, out, errOut)
		}
	}
}

// TestRemoteEnvNeedsServer: STS_TOKEN_FILE and STS_CA_FILE belong to
// remote mode like their flags: set without STS_SERVER (or --server) the
// command exits 2, naming the variable, instead of silently opening the
// database with the master key (docs/security.md T-169).
func TestRemoteEnvNeedsServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	writeMode(t, tok, "sts_pat_x\n", 0o600)
	for _, name := range []string{"STS_TOKEN_FILE", "STS_CA_FILE"} {
		t.Run(name, func(t *testing.T) {
			remoteEnv(t)
			setenv(t, name, tok)
			code, out, errOut := runCLI(t, "org", "list", "--data-dir", dir)
			if code != 2 || !strings.Contains(errOut, name+" is set but") {
				t.Errorf("org list with %s and no server = %d, stdout %q, stderr %q; want exit 2 naming %s", name, code, out, errOut, name)
			}
			if strings.Contains(errOut, tok) {
				t.Errorf("stderr %q echoes the file's name", errOut)
			}
		})
	}
}

// silentServer is a loopback TCP listener that accepts connections and
// never answers: a server that hangs, or a firewall that drops replies.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// TestRemoteTimeout: --timeout (or STS_TIMEOUT) bounds each call to a
// server that never answers, for the admin nouns and host-token alike,
// and the error says which bound was hit; a bad value is a usage error
// (exit 2) before any connection (docs/cli.md "Credentials and trust").
func TestRemoteTimeout(t *testing.T) {
	t.Parallel()
	server := silentServer(t)
	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flag", nil, []string{"org", "list", "--timeout", "300ms"}},
		{"STS_TIMEOUT", map[string]string{"STS_TIMEOUT": "300ms"}, []string{"principal", "list", "--org", "acme"}},
		{"host-token", nil, []string{"host-token", "list", "--runner", "r1", "--timeout", "300ms"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			remoteEnv(t)
			setenv(t, "STS_TOKEN", "sts_pat_x")
			for k, v := range c.env {
				setenv(t, k, v)
			}
			start := time.Now()
			code, out, errOut := runCLI(t, append(c.args, "--server", server)...)
			took := time.Since(start)
			if code != 1 || !strings.Contains(errOut, "no answer from the server within 300ms") {
				t.Errorf("sts %v against a silent server = %d, stdout %q, stderr %q; want exit 1 naming the timeout", c.args, code, out, errOut)
			}
			if took > 10*time.Second {
				t.Errorf("sts %v took %s, want about 300ms", c.args, took)
			}
		})
	}
	for _, bad := range []string{"0", "-1s", "soon"} {
		t.Run("bad "+bad, func(t *testing.T) {
			t.Parallel()
			remoteEnv(t)
			setenv(t, "STS_TOKEN", "sts_pat_x")
			setenv(t, "STS_TIMEOUT", bad)
			code, _, errOut := runCLI(t, "org", "list", "--server", server)
			if code != 2 || !strings.Contains(errOut, "--timeout") {
				t.Errorf("STS_TIMEOUT=%s: exit %d, stderr %q; want exit 2 naming --timeout", bad, code, errOut)
			}
		})
	}
}
