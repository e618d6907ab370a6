package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// pgThroughProxy is a configuration on PostgreSQL (a fresh schema) reached
// through a fault proxy, so a test can black-hole or refuse the database.
func pgThroughProxy(t *testing.T) (config.Config, *faultproxy.Proxy) {
	t.Helper()
	p, proxied := faultproxy.PostgresDSN(t, ststest.PostgresDSN(t))
	cfg := testConfig(t)
	cfg.Storage.Type = "postgres"
	cfg.Storage.DSN = proxied
	// PostgreSQL means replicas: the issuer is never derived (F-32).
	cfg.Issuer, cfg.IssuerDerived = "http://"+cfg.Listen, false
	return cfg, p
}

// startApp runs a on cfg until the returned stop is called, and waits
// until it is ready; stop reports Run's error and how long Run took to
// return after the cancel.
func startApp(t *testing.T, cfg config.Config) (stop func() (error, time.Duration)) {
	t.Helper()
	stop = runApp(t, cfg, nil)
	get(t, "http://"+cfg.Listen+"/readyz", http.StatusOK)
	return stop
}

// runApp is startApp without the wait for ready, logging to logs when it
// is not nil: for the tests of a start that is not (yet) ready. A new
// SQLite database starts as a migrated copy (ststest.SeedSQLite): no
// caller is about migrating one, and TestNewRun still starts from nothing.
func runApp(t *testing.T, cfg config.Config, logs *logBuffer) (stop func() (error, time.Duration)) {
	t.Helper()
	ststest.SeedSQLite(t, cfg)
	handler := slog.DiscardHandler
	if logs != nil {
		handler = slog.NewTextHandler(logs, nil)
	}
	a, err := app.New(t.Context(), cfg, app.Options{Logger: slog.New(handler)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	var took time.Duration
	stop = func() (error, time.Duration) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatalf("Run did not return within 2 minutes of cancel (log:\n%s)", logs)
			}
			took = time.Since(start)
		})
		return runErr, took
	}
	t.Cleanup(func() { stop() })
	return stop
}

// postToken sends a client_credentials request for a client that does not
// exist: answering it needs a storage read (the client row).
func postToken(client *http.Client, base string) (*http.Response, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("no-such-client", "no-such-secret")
	return client.Do(req)
}

// TestBlackHoledDatabaseAnswers503 (docs/security.md F-40): with
// PostgreSQL black-holed (connections accepted, nothing forwarded) the
// token endpoint answers 503 with Retry-After within storage.call_timeout
// and a little slack, never hangs, and the goroutines of the waiting
// clients do not outlive the bound.
func TestBlackHoledDatabaseAnswers503(t *testing.T) {
	cfg, proxy := pgThroughProxy(t)
	setCallTimeout(&cfg, time.Second)
	startApp(t, cfg)
	base := "http://" + cfg.Listen
	client := &http.Client{Timeout: 30 * time.Second}

	// Up: the unknown client is refused as such (401), from storage.
	resp, err := postToken(client, base)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown client with the database up: %d, want 401", resp.StatusCode)
	}
	client.CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	proxy.Set(faultproxy.BlackHole)
	const clients = 20
	bound := callTimeout(cfg) + 3*time.Second
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			start := time.Now()
			resp, err := postToken(client, base)
			took := time.Since(start)
			if err != nil {
				t.Errorf("after %s: %v", took.Round(time.Millisecond), err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("black-holed database: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if took > bound {
				t.Errorf("answered after %s, want within %s", took.Round(time.Millisecond), bound)
			}
		})
	}
	wg.Wait()
	client.CloseIdleConnections()
	// Every waiting request has ended: no goroutine per client is left
	// behind (a little slack for pool connections being closed).
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > baseline+clients/2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline+clients/2 {
		t.Errorf("%d goroutines after the clients were answered, baseline %d", n, baseline)
	}
}

// TestShutdownWithDatabaseBlackHoled (docs/security.md F-41): with
// PostgreSQL black-holed and requests waiting on it, cancelling Run (what
// SIGTERM does) returns nil within http.shutdown_timeout and a little
// slack, whether the waiting requests end before the shutdown timeout
// (their storage deadline is shorter) or are cut off by it.
func TestShutdownWithDatabaseBlackHoled(t *testing.T) {
	for _, tc := range []struct{ call, shutdown time.Duration }{
		{call: time.Second, shutdown: 2 * time.Second},
		{call: 8 * time.Second, shutdown: time.Second},
	} {
		t.Run("call_timeout="+tc.call.String()+",shutdown_timeout="+tc.shutdown.String(), func(t *testing.T) {
			testShutdownBlackHoled(t, tc.call, tc.shutdown)
		})
	}
}

func testShutdownBlackHoled(t *testing.T, call, shutdown time.Duration) {
	cfg, proxy := pgThroughProxy(t)
	setCallTimeout(&cfg, call)
	cfg.HTTP.ShutdownTimeout = shutdown
	stop := startApp(t, cfg)
	base := "http://" + cfg.Listen
	proxy.Set(faultproxy.BlackHole)
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if resp, err := postToken(client, base); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the requests are waiting on storage
	err, took := stop()
	if err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if limit := cfg.HTTP.ShutdownTimeout + 3*time.Second; took > limit {
		t.Errorf("Run returned %s after cancel, want within %s", took.Round(time.Millisecond), limit)
	}
	wg.Wait()
}
