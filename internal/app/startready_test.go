package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/ststest"
)

// readyzBody is GET /readyz's status and failing checks.
func readyzBody(t *testing.T, client *http.Client, base string) (int, map[string]string) {
	t.Helper()
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var b struct{ Failing map[string]string }
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return resp.StatusCode, b.Failing
}

// TestNotReadyUntilTokenEndpointsMounted (docs/security.md F-97): on
// PostgreSQL, a start whose signing keys load but whose token endpoints
// cannot be built yet (the pepper's table is locked by another session, so
// its read runs into statement_timeout) must not answer /readyz 200 while
// the token endpoints answer 503: an orchestrator would send the replica
// traffic it cannot serve. Once the lock goes, the retry mounts them and
// /readyz turns 200.
func TestNotReadyUntilTokenEndpointsMounted(t *testing.T) {
	dsn := ststest.PostgresDSN(t)
	cfg := testConfig(t)
	cfg.Storage.Type = "postgres"
	cfg.Storage.DSN = dsn
	cfg.Storage.StatementTimeout = 500 * time.Millisecond
	cfg.Issuer, cfg.IssuerDerived = "http://"+cfg.Listen, false
	// A first start made the master key, the signing keys and the pepper.
	if err, _ := startApp(t, cfg)(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(t.Context(), "LOCK TABLE server_secrets IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			_ = lock.Rollback()
		}
	}
	defer unlock()

	logs := &logBuffer{}
	a, err := app.New(t.Context(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of cancel")
		}
	}()
	base := "http://" + cfg.Listen
	get(t, base+"/livez", http.StatusOK)
	client := &http.Client{Timeout: 10 * time.Second}

	// While the pepper cannot be read, over several retries: never ready,
	// and the token endpoint says 503 with Retry-After.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		code, failing := readyzBody(t, client, base)
		if code == http.StatusOK {
			resp, err := postToken(client, base)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			t.Fatalf("/readyz = 200 while the token endpoint answers %d (log:\n%s)", resp.StatusCode, logs)
		}
		if code != http.StatusServiceUnavailable || failing["token_endpoints"] == "" {
			t.Fatalf("/readyz = %d %v, want 503 naming token_endpoints", code, failing)
		}
	}
	resp, err := postToken(client, base)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("token endpoint before it is mounted: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	unlock()
	get(t, base+"/readyz", http.StatusOK)
	resp, err = postToken(client, base)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown client once ready: %d, want 401", resp.StatusCode)
	}
	if n := strings.Count(logs.String(), "signing keys loaded"); n != 1 {
		t.Errorf("signing keys loaded logged %d times, want once", n)
	}
}
