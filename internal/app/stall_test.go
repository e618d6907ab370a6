package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/discovery"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestSQLiteStallStaysResponsive (docs/security.md F-46): while SQLite
// cannot be written (another connection holds the write lock: an injected
// storage stall), every write ends within the request's storage deadline
// with 503 and Retry-After, and /livez and the JWKS, which need no storage
// call, keep answering at once. What a stalled disk does beyond this is in
// docs/reliability.md ("SQLite and a stalled disk").
func TestSQLiteStallStaysResponsive(t *testing.T) {
	const callTimeout = time.Second
	// As serve opens it: busy_timeout is storage.call_timeout.
	path := filepath.Join(t.TempDir(), "sts.db")
	sqlitetest.WriteMigrated(t, path)
	e := newOAuthEnvOn(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path, ConnectTimeout: callTimeout})
	tok := e.ccToken(t, e.a, e.secA)
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Store: e.store, CallTimeout: callTimeout, GCInterval: time.Hour, Mounters: append([]server.Mounter{
		&grants.Handler{Grants: e.parts.Grants, Clients: e.parts.ClientAuth},
		&discovery.Handler{Issuer: e.srv.URL, Keys: keys},
	}, e.parts.Mounters...)})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client := &http.Client{Timeout: 20 * time.Second}

	// The stall: a second connection takes the database's write lock and
	// keeps it.
	st := e.store.Store.(*sqlstore.Store)
	conn, err := st.DB().Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
		}
	}
	defer release()

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, hs.URL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(url.QueryEscape(e.a.ID), url.QueryEscape(e.secA))
			resp, err := client.Do(req)
			took := time.Since(start)
			if err != nil {
				t.Errorf("revoke during the stall: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("revoke during the stall: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if bound := callTimeout + 2*time.Second; took > bound {
				t.Errorf("revoke answered after %s, want within %s", took.Round(time.Millisecond), bound)
			}
		})
	}
	// /readyz names the stalled write path (docs/security.md F-49), within
	// its own 2 s bound, while reads keep the "storage" check up.
	start := time.Now()
	if resp, err := client.Get(hs.URL + "/readyz"); err != nil {
		t.Errorf("/readyz during the stall: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable ||
			!strings.Contains(string(body), `"storage_write":"timeout"`) || strings.Contains(string(body), `"storage":`) || took > 2500*time.Millisecond {
			t.Errorf("/readyz during the stall: %d %s after %s, want 503 naming storage_write timeout (only) within 2.5 s", resp.StatusCode, body, took)
		}
	}
	for _, path := range []string{"/livez", discovery.PathJWKS} {
		start := time.Now()
		resp, err := client.Get(hs.URL + path)
		if err != nil {
			t.Fatalf("%s during the stall: %v", path, err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != http.StatusOK || took > 500*time.Millisecond {
			t.Errorf("%s during the stall: %d after %s, want 200 at once", path, resp.StatusCode, took)
		}
	}
	wg.Wait()
	release()
	// The stall over: the revocation is stored and holds.
	if status, _, body := e.post(t, "/oauth2/revoke", url.Values{"token": {tok}}, e.a.ID, e.secA); status != http.StatusOK {
		t.Fatalf("revoke after the stall = %d %s", status, body)
	}
	if got := e.introspect(t, tok); got["active"] != false {
		t.Errorf("token after the stall's revocation: %v", got)
	}
}
