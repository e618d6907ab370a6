package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/discovery"
)

// logBuffer collects log lines written from several goroutines.
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

// freeAddr is a loopback address nothing listens on (it was free a moment
// ago), so Run exercises its own listen.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Listen = freeAddr(t)
	cfg.DataDir = t.TempDir()
	cfg.Derive()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// get fetches url, retrying while the listener is not up yet, until it
// answers want or 10 s pass.
func get(t *testing.T, url string, want int) []byte {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	// A wait, not a bound under test: a start-up (migrations, keys) on a
	// loaded machine with -race can take longer than 10 s.
	deadline := time.Now().Add(30 * time.Second)
	last := "no response"
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return body
			}
			last = resp.Status + ": " + string(body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s did not answer %d within 30s (last: %s)", url, want, last)
	return nil
}

// TestNewRun builds an App on SQLite in a temporary data_dir, runs it on a
// free loopback port, sees it become ready and serve discovery, and sees Run
// return nil once its context is cancelled.
// (Not parallel: it bounds how soon Run returns after cancel.)
func TestNewRun(t *testing.T) {
	cfg := testConfig(t)
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	a, err := app.New(t.Context(), cfg, app.Options{Logger: logger})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	base := "http://" + cfg.Listen
	get(t, base+"/readyz", http.StatusOK)
	var meta struct {
		Issuer        string `json:"issuer"`
		JWKSURI       string `json:"jwks_uri"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(get(t, base+discovery.PathOpenIDConfiguration, http.StatusOK), &meta); err != nil {
		t.Fatalf("discovery document: %v", err)
	}
	if meta.Issuer != cfg.Issuer || !strings.HasPrefix(meta.JWKSURI, cfg.Issuer) || !strings.HasPrefix(meta.TokenEndpoint, cfg.Issuer) {
		t.Errorf("discovery = %+v, want issuer %q and endpoints under it", meta, cfg.Issuer)
	}
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(get(t, base+discovery.PathJWKS, http.StatusOK), &jwks); err != nil || len(jwks.Keys) == 0 {
		t.Errorf("JWKS has no keys (%v)", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of cancel")
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Error("still serving after Run returned")
	}
	out := logs.String()
	for _, want := range []string{"sts is starting", "generated master key", "created the first organization", "listening", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); err != nil {
		t.Errorf("master key not generated: %v", err)
	}
}

// TestNewRefusesInvalidTrust: a pool whose condition does not compile
// stops New with a *config.Error naming it, before storage is opened.
func TestNewRefusesInvalidTrust(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Organizations = []config.OrganizationConfig{{ID: "acme"}}
	cfg.Pools = []config.PoolConfig{{
		ID: "ci", Organization: "acme", Condition: "assertion.repository_owner ==",
		Providers: []config.ProviderConfig{{ID: "github", Issuer: "https://token.actions.githubusercontent.com", Audiences: []string{"sts"}}},
	}}
	_, err := app.New(t.Context(), cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
	if _, ok := errors.AsType[*config.Error](err); !ok || !strings.Contains(err.Error(), `pools[ci].condition`) {
		t.Fatalf("New = %v, want a *config.Error naming pools[ci].condition", err)
	}
	if _, err := os.Stat(cfg.Storage.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("database %s exists after a refused start (%v)", cfg.Storage.Path, err)
	}
}
