package ststest

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// Server is a real sts (app.New and Run: storage, master key, middleware, ops
// endpoints) running in-process on a loopback port with a temporary
// data_dir. It stops when the test ends.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:<port>"; also the issuer
	// unless the test set another.
	URL string
	// Config is the configuration the server runs with.
	Config config.Config
	// Client talks to the server.
	Client *http.Client

	done chan error
}

// StartServer starts sts with the defaults (SQLite in t.TempDir(), a
// free loopback port) changed by mutate, which may be nil. A new SQLite
// file starts as a copy of a migrated one; see [SeedSQLite]. It does not wait
// for readiness; see [NewTestServer]. mutate must not change Listen: the
// port is already bound.
func StartServer(t testing.TB, mutate func(c *config.Config)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ststest: listen: %v", err)
	}
	cfg := config.DefaultConfig()
	cfg.Listen = ln.Addr().String()
	// Explicit, as sts serve on PostgreSQL requires (docs/security.md F-32).
	cfg.Issuer = "http://" + cfg.Listen
	cfg.DataDir = t.TempDir()
	cfg.Log.Level = "debug"
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.Derive()
	if err := cfg.Validate(); err != nil {
		ln.Close()
		t.Fatalf("ststest: %v", err)
	}
	SeedSQLite(t, cfg)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		URL:    "http://" + ln.Addr().String(),
		Config: cfg,
		Client: &http.Client{Timeout: 10 * time.Second},
		done:   make(chan error, 1),
	}
	go func() {
		a, err := app.New(ctx, cfg, app.Options{Logger: logger, Listener: ln})
		if err != nil {
			s.done <- err
			return
		}
		s.done <- a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("ststest: serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("ststest: server did not shut down within 20s")
		}
	})
	return s
}

// SeedSQLite writes a copy of a migrated database where cfg's SQLite file
// is to be, when the server would migrate a new file itself
// (storage.auto_migrate) and the test put none there: the server then
// finds the schema current, as it would after migrating, and starts about
// a second sooner under -race. A server left to refuse pending migrations,
// started on a file the test wrote, or left to make its data_dir is left
// alone. Tests of a first start (migrating from nothing, making data_dir)
// must not call it; [StartServer] does.
func SeedSQLite(t testing.TB, cfg config.Config) {
	t.Helper()
	if cfg.Storage.Type != "sqlite" || !cfg.Storage.AutoMigrate || cfg.Storage.Path == "" {
		return
	}
	if _, err := os.Lstat(cfg.Storage.Path); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if _, err := os.Stat(filepath.Dir(cfg.Storage.Path)); err != nil {
		return // the server makes or refuses the directory itself
	}
	sqlitetest.WriteMigrated(t, cfg.Storage.Path)
}

// NewTestServer is [StartServer] followed by [Server.WaitReady]: the
// one-liner for end-to-end tests of features.
func NewTestServer(t testing.TB, mutate func(c *config.Config)) *Server {
	t.Helper()
	s := StartServer(t, mutate)
	s.WaitReady(t)
	return s
}

// WaitReady polls /readyz until it answers 200, failing the test after
// readyWait or if the server stops.
func (s *Server) WaitReady(t testing.TB) {
	t.Helper()
	s.waitStatus(t, "/readyz", http.StatusOK)
}

// readyWait bounds waitStatus. A server on an idle machine is ready in well
// under a second; the bound is generous because a CI runner's two cores may
// be building other packages' test binaries meanwhile, and waiting longer
// costs nothing when the server comes up.
const readyWait = 60 * time.Second

// waitStatus polls path until it answers want.
func (s *Server) waitStatus(t testing.TB, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(readyWait)
	last := "no response"
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err // let Cleanup see it too
			t.Fatalf("ststest: server stopped before %s answered %d: %v", path, want, err)
		default:
		}
		resp, err := s.Client.Get(s.URL + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("ststest: %s did not answer %d within %s (last: %s)", path, want, readyWait, last)
}

// Get fetches path and fails the test on a transport error.
func (s *Server) Get(t testing.TB, path string) *http.Response {
	t.Helper()
	resp, err := s.Client.Get(s.URL + path)
	if err != nil {
		t.Fatalf("ststest: GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// PostgresDSN returns STS_TEST_POSTGRES_DSN with search_path set to a
// fresh schema dropped when the test ends; see [pgtest.DSN].
func PostgresDSN(t testing.TB) string { return pgtest.DSN(t) }
