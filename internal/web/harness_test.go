package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ststest"
)

// logBuffer collects the server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// server is a real `sts serve` (app.New + Run) on a loopback port.
type server struct {
	URL string
	// Addr is the listen address: the issuer (URL) may name another
	// host, as behind a TLS-terminating proxy.
	Addr    string
	cfgFile string
	dbPath  string
	logs    *logBuffer
}

func startServer(t *testing.T, extraYAML ...string) *server {
	t.Helper()
	return startServerIn(t, filepath.Join(t.TempDir(), "data"), extraYAML...)
}

// startServerIn is startServer over the data directory dataDir: servers
// started over the same one share storage and keys, as replicas (or a
// restart with a new configuration) do. dataDir is made here (0700, as
// sts makes it) so that startServerYAML can seed the first server's
// database; no test here is about sts making its data_dir.
func startServerIn(t *testing.T, dataDir string, extraYAML ...string) *server {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return startServerYAML(t, func(addr string) string {
		return "listen: " + addr + "\ndata_dir: " + dataDir + "\n" + strings.Join(extraYAML, "")
	})
}

// startServerPG is startServer on the PostgreSQL database dsn, the issuer
// the listen address (explicit, as PostgreSQL requires).
func startServerPG(t *testing.T, dsn string) *server {
	t.Helper()
	return startServerPGIn(t, dsn, t.TempDir(), "")
}

// startServerPGIn is startServerPG over the data directory dataDir, with
// issuer ("": the listen address) and extraYAML appended: servers started
// over the same dsn and issuer share storage and tokens, as replicas (or a
// restart with a new configuration) do.
func startServerPGIn(t *testing.T, dsn, dataDir, issuer string, extraYAML ...string) *server {
	t.Helper()
	s := startServerYAML(t, func(addr string) string {
		if issuer == "" {
			issuer = "http://" + addr
		}
		return "listen: " + addr + "\ndata_dir: " + dataDir + "\nissuer: " + issuer +
			"\nstorage:\n  type: postgres\n  dsn: " + dsn + "\n" + strings.Join(extraYAML, "")
	})
	s.dbPath = "" // no SQLite file
	return s
}

// startServerYAML runs sts on a loopback listener with the configuration
// file yaml(listen address) until the test ends, and waits until /login
// answers 200. A new SQLite database starts as a migrated copy
// (ststest.SeedSQLite): no test here is about migrating one, and running
// every migration is about a second of each start under -race.
func startServerYAML(t *testing.T, yaml func(addr string) string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(cfgFile, []byte(yaml(ln.Addr().String())), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{File: cfgFile, Environ: func() []string { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ststest.SeedSQLite(t, cfg)
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Listener: ln})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	s := &server{URL: cfg.Issuer, Addr: ln.Addr().String(), cfgFile: cfgFile, dbPath: cfg.Storage.Path, logs: logs}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + s.Addr + "/login")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sts runs an sts command against the server's configuration.
func (s *server) sts(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append([]string{}, args...)
	argv = append(argv, "--config", s.cfgFile)
	if code := cli.Main(t.Context(), argv, &out, &errb); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// loginLink mints a one-time sign-in link for user.
func (s *server) loginLink(t *testing.T, user string) string {
	t.Helper()
	link := s.sts(t, "login-link", "--user", user)
	if !strings.HasPrefix(link, s.URL+"/login/link#") {
		t.Fatalf("login-link printed %q", link)
	}
	return link
}

// identity calls gitpod.v1 GetAuthenticatedIdentity (Connect JSON) with
// token and returns the status and the subject id.
func (s *server) identity(t *testing.T, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/gitpod.v1.IdentityService/GetAuthenticatedIdentity", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Subject struct {
			ID string `json:"id"`
		} `json:"subject"`
	}
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out.Subject.ID
}
