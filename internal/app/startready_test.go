package app_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
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
	cfg := testConfig(t)
	dsn := onPostgres(t, &cfg)
	cfg.Storage.StatementTimeout = 500 * time.Millisecond
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
	runApp(t, cfg, logs)
	base := "http://" + cfg.Listen
	get(t, base+"/livez", http.StatusOK)
	client := &http.Client{Timeout: 10 * time.Second}

	// While the pepper cannot be read, over several retries: never ready,
	// and the token endpoint says 503 with Retry-After.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		code, failing := readyzBody(t, client, base)
		if code == http.StatusOK {
			resp := postTokenDrained(t, client, base)
			t.Fatalf("/readyz = 200 while the token endpoint answers %d (log:\n%s)", resp.StatusCode, logs)
		}
		if code != http.StatusServiceUnavailable || failing["token_endpoints"] == "" {
			t.Fatalf("/readyz = %d %v, want 503 naming token_endpoints", code, failing)
		}
	}
	resp := postTokenDrained(t, client, base)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("token endpoint before it is mounted: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	unlock()
	get(t, base+"/readyz", http.StatusOK)
	resp = postTokenDrained(t, client, base)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown client once ready: %d, want 401", resp.StatusCode)
	}
	if n := strings.Count(logs.String(), "signing keys loaded"); n != 1 {
		t.Errorf("signing keys loaded logged %d times, want once", n)
	}
}

// queryHole forwards PostgreSQL traffic until a client sends a message
// holding trigger; from then on it forwards nothing either way, on every
// connection, new ones included (a database that stopped answering between
// two start-up reads, on a connection already open), until pass.
type queryHole struct {
	ln      net.Listener
	target  string
	trigger []byte
	mu      sync.Mutex
	holed   bool
	fired   bool // once only: after pass the trigger no longer holes
	holedAt chan struct{}
}

func newQueryHole(t *testing.T, target, trigger string) *queryHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &queryHole{ln: ln, target: target, trigger: []byte(trigger), holedAt: make(chan struct{})}
	var conns []net.Conn
	var cmu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
			go h.serve(c, &conns, &cmu)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		defer cmu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return h
}

func (h *queryHole) isHoled() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.holed
}

// pass makes the proxy forward again, on new connections.
func (h *queryHole) pass() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holed = false
}

func (h *queryHole) serve(c net.Conn, conns *[]net.Conn, cmu *sync.Mutex) {
	if h.isHoled() {
		io.Copy(io.Discard, c) // accepted, never answered
		return
	}
	up, err := net.Dial("tcp", h.target)
	if err != nil {
		c.Close()
		return
	}
	cmu.Lock()
	*conns = append(*conns, up)
	cmu.Unlock()
	// This connection stays dead once holed, even after pass: its
	// session's state is unknown, as after a partition.
	var dead atomic.Bool
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 && !dead.Load() && !h.isHoled() {
				c.Write(buf[:n])
			}
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			h.mu.Lock()
			if !h.fired && bytes.Contains(buf[:n], h.trigger) {
				h.holed, h.fired = true, true
				close(h.holedAt)
			}
			holed := h.holed
			h.mu.Unlock()
			if holed {
				dead.Store(true)
			}
			if !dead.Load() {
				up.Write(buf[:n])
			}
		}
		if err != nil {
			up.Close()
			return
		}
	}
}

// TestStartWithDatabaseGoneQuietIsBounded (docs/security.md F-98): on
// PostgreSQL, when the database stops answering in the middle of the
// start-up (after the connection is open, at the signing keys' first read,
// or at the pepper's), the start gives up on that read within
// storage.call_timeout: sts serves, /livez answers 200 and /readyz 503,
// and once the database answers again it turns ready without a restart;
// cancelling Run (SIGTERM) then returns within http.shutdown_timeout.
func TestStartWithDatabaseGoneQuietIsBounded(t *testing.T) {
	for _, trigger := range []string{"schema_migrations", "signing_key", "server_secrets"} {
		t.Run(trigger, func(t *testing.T) {
			const call = time.Second
			const shutdown = time.Second // startBehindHole's http.shutdown_timeout
			base, hole, stop, logs := startBehindHole(t, testConfig(t), trigger, call)
			holed := time.Now()
			client := &http.Client{Timeout: 2 * time.Second}
			waitLive(t, client, base, holed, 4*call+5*time.Second, "the database stopped answering", call, logs)
			if code, failing := readyzBody(t, client, base); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz with the database quiet = %d %v, want 503", code, failing)
			}
			// /livez answers from the start (F-102), before the step has
			// run into its bound: the step's failure is logged once it has.
			for end := holed.Add(4*call + 5*time.Second); !strings.Contains(logs.String(), "storage not ready"); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(end) {
					t.Errorf("no storage not ready logged:\n%s", logs)
					break
				}
			}

			hole.pass()
			get(t, base+"/readyz", http.StatusOK)

			err, took := stop()
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if took > shutdown+3*time.Second {
				t.Errorf("Run returned %s after cancel, want within %s", took.Round(time.Millisecond), shutdown+3*time.Second)
			}
		})
	}
}

// TestTokenEndpointsBuildRetried (docs/security.md F-99): on PostgreSQL,
// a start whose token endpoints were built but whose web pages could not
// be yet (web.login.oidc names an organization not created yet) retried
// the whole build, registering the token endpoints' metrics a second time:
// the retry panicked and the process ended. It must stay up, not ready
// (/readyz naming the reason), the token endpoint 503 with Retry-After,
// and turn ready once the organization exists.
func TestTokenEndpointsBuildRetried(t *testing.T) {
	cfg := testConfig(t)
	dsn := onPostgres(t, &cfg)
	cfg.Web.Login.OIDC = []config.WebOIDCConfig{{ID: "corp", Issuer: "https://idp.example.com", ClientID: "sts", LinkClaim: "email", Organization: "acme"}}
	logs := &logBuffer{}
	runApp(t, cfg, logs)
	base := "http://" + cfg.Listen
	get(t, base+"/livez", http.StatusOK)
	client := &http.Client{Timeout: 10 * time.Second}

	// The listener serves during the first attempt too (F-102): wait for
	// its build to fail once, then watch several retries (250 ms, 500 ms,
	// 1 s, 2 s apart).
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, failing := readyzBody(t, client, base); failing["token_endpoints"] == "token endpoints not built yet; see the server log" {
			break
		}
	}
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		code, failing := readyzBody(t, client, base)
		// Unauthenticated: a fixed reason, never the build error's
		// organization or provider names, which go to the log.
		if code != http.StatusServiceUnavailable || failing["token_endpoints"] != "token endpoints not built yet; see the server log" {
			t.Fatalf("/readyz = %d %v, want 503 with token_endpoints' fixed reason", code, failing)
		}
		for name, reason := range failing {
			if strings.Contains(reason, "acme") || strings.Contains(reason, "corp") {
				t.Fatalf("/readyz check %s shows the configuration's names: %q", name, reason)
			}
		}
	}
	if !strings.Contains(logs.String(), `acme`) {
		t.Errorf("the build error is not in the log:\n%s", logs)
	}
	resp := postTokenDrained(t, client, base)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("token endpoint before it is mounted: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.CreateOrganization(t.Context(), storage.Organization{ID: storage.NewID(), Name: "acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	get(t, base+"/readyz", http.StatusOK)
	resp = postTokenDrained(t, client, base)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown client once ready: %d, want 401", resp.StatusCode)
	}
}

// startBehindHole starts the app on PostgreSQL behind a queryHole that
// goes quiet once the start sends trigger (after a clean first start),
// with storage.call_timeout call and http.shutdown_timeout 1 s, and waits
// for the hole. It returns the base URL, the hole, runApp's stop and the
// log.
func startBehindHole(t *testing.T, cfg config.Config, trigger string, call time.Duration) (string, *queryHole, func() (error, time.Duration), *logBuffer) {
	t.Helper()
	dsn := onPostgres(t, &cfg)
	if err, _ := startApp(t, cfg)(); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if !strings.Contains(target, ":") {
		target += ":5432"
	}
	hole := newQueryHole(t, target, trigger)
	u.Host = hole.ln.Addr().String()
	cfg.Storage.DSN = u.String()
	cfg.Storage.CallTimeout = call
	cfg.HTTP.ShutdownTimeout = time.Second
	logs := &logBuffer{}
	stop := runApp(t, cfg, logs)
	t.Cleanup(func() { hole.ln.Close() })
	select {
	case <-hole.holedAt:
	case <-time.After(20 * time.Second):
		t.Fatalf("the start never sent %q (log:\n%s)", trigger, logs)
	}
	return "http://" + cfg.Listen, hole, stop, logs
}

// TestTrustApplyWithDatabaseGoneQuietIsBounded (docs/security.md F-98):
// with pools in the file, the start applies the trust configuration in one
// transaction; a PostgreSQL that goes quiet during it must not hold the
// start (and /livez, before the listener serves) beyond
// storage.call_timeout. sts serves, /livez 200, /readyz 503 naming
// trust_config, and once the database answers again it applies the
// configuration and turns ready.
func TestTrustApplyWithDatabaseGoneQuietIsBounded(t *testing.T) {
	cfg := examplePools()
	base := testConfig(t)
	cfg.Listen, cfg.DataDir = base.Listen, base.DataDir
	cfg.Derive()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	const call = time.Second
	srvURL, hole, _, logs := startBehindHole(t, cfg, "pools", call)
	holed := time.Now()
	client := &http.Client{Timeout: time.Second}
	waitLive(t, client, srvURL, holed, 4*call+4*time.Second, "the database went quiet in the trust configuration's transaction", call, logs)
	// /readyz's storage check itself waits up to storage.call_timeout.
	if code, failing := readyzBody(t, &http.Client{Timeout: 4 * call}, srvURL); code != http.StatusServiceUnavailable || failing["trust_config"] == "" {
		t.Errorf("/readyz with the database quiet = %d %v, want 503 naming trust_config", code, failing)
	}
	hole.pass()
	get(t, srvURL+"/readyz", http.StatusOK)
	if !strings.Contains(logs.String(), "trust configuration unchanged") {
		t.Errorf("trust configuration not applied once the database answered:\n%s", logs)
	}
}

// TestCancelDuringHungStartReturnsPromptly (docs/security.md F-98): a
// SIGTERM while a start-up step waits on a database gone quiet (a long
// storage.call_timeout, before the listener serves) ends the step and Run
// returns nil within http.shutdown_timeout.
func TestCancelDuringHungStartReturnsPromptly(t *testing.T) {
	for _, trigger := range []string{"schema_migrations", "server_secrets"} {
		t.Run(trigger, func(t *testing.T) {
			_, _, stop, logs := startBehindHole(t, testConfig(t), trigger, time.Minute)
			time.Sleep(300 * time.Millisecond)
			err, took := stop()
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if took > 2*time.Second {
				t.Errorf("Run returned %s after cancel, want within http.shutdown_timeout (1 s; log:\n%s)", took.Round(time.Millisecond), logs)
			}
		})
	}
}

// onPostgres points cfg at the test PostgreSQL, with the issuer its
// listen address, and returns the DSN.
func onPostgres(t *testing.T, cfg *config.Config) string {
	t.Helper()
	dsn := ststest.PostgresDSN(t)
	cfg.Storage.Type = "postgres"
	cfg.Storage.DSN = dsn
	cfg.Issuer, cfg.IssuerDerived = "http://"+cfg.Listen, false
	return dsn
}

// postTokenDrained is postToken with the body read and closed; a failed
// request fails the test.
func postTokenDrained(t *testing.T, client *http.Client, base string) *http.Response {
	t.Helper()
	resp, err := postToken(client, base)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// waitLive polls base's /livez until it answers 200 and logs how long
// after since that took; past limit it fails the test, saying /livez did
// not answer after what happened (storage.call_timeout call).
func waitLive(t *testing.T, client *http.Client, base string, since time.Time, limit time.Duration, what string, call time.Duration, logs *logBuffer) {
	t.Helper()
	for {
		resp, err := client.Get(base + "/livez")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(since) > limit {
			t.Fatalf("/livez not answering %s after %s (storage.call_timeout %s; log:\n%s)",
				time.Since(since).Round(time.Millisecond), what, call, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/livez answered %s after %s", time.Since(since).Round(time.Millisecond), what)
}
