package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// TestRevokeEndsWhenDatabaseGoesAway (docs/security.md F-90): a
// revocation whose refresh-token UPDATE waits behind a stuck rotation's
// row lock while PostgreSQL then stops answering is answered 503 with
// Retry-After soon after storage.call_timeout. The write that follows the
// failed UPDATE (tokens.EndFamily keeping the family's row until it
// expires) runs detached from the request's cancellation, and ran without
// any deadline: on a black-holed database the request waited until TCP
// gave up on the connection, minutes, where F-40 promises seconds.
func TestRevokeEndsWhenDatabaseGoesAway(t *testing.T) {
	direct := ststest.PostgresDSN(t)
	u, err := url.Parse(direct)
	if err != nil || u.Host == "" {
		t.Skip("keyword/value STS_TEST_POSTGRES_DSN; this test needs the URL form")
	}
	target := u.Host
	if !strings.Contains(target, ":") {
		target += ":5432"
	}
	proxy := faultproxy.New(t, target)
	u.Host = proxy.Addr()
	const call = time.Second
	e := newCodeEnv(t, func(c *config.Config) {
		c.Storage.Type = "postgres"
		c.Storage.DSN = u.String()
		c.Issuer, c.IssuerDerived = "http://"+c.Listen, false
		setCallTimeout(c, call)
	})
	tok := e.tokenFor(t, e.user, "notes.read")
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	// A stuck rotation: another session holds the family's rows.
	ctx := t.Context()
	holder, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close(context.Background()) })
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT id FROM refresh_tokens FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		status     int
		retryAfter string
		err        error
		took       time.Duration
	}
	done := make(chan answer, 1)
	go func() {
		form := url.Values{"token": {tok.RefreshToken}}
		req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(e.conf.ID, e.secret)
		start := time.Now()
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		a := answer{err: err, took: time.Since(start)}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		}
		done <- a
	}()
	// The revocation's UPDATE waits for the lock; then the database stops
	// answering.
	waitForLockWait(t, holder)
	proxy.Set(faultproxy.BlackHole)

	bound := call + 5*time.Second + 3*time.Second // the request, the detached write, slack
	select {
	case a := <-done:
		if a.err != nil {
			t.Fatalf("revoke: %v", a.err)
		}
		if a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
			t.Errorf("revoke: %d Retry-After %q, want 503 with Retry-After", a.status, a.retryAfter)
		}
		t.Logf("revoke answered %d after %s", a.status, a.took.Round(time.Millisecond))
		if a.took > bound {
			t.Errorf("revoke answered after %s, want within %s", a.took.Round(time.Millisecond), bound)
		}
	case <-time.After(bound + 5*time.Second):
		t.Fatalf("revoke not answered within %s of a black-holed database", bound+5*time.Second)
	}
}

// waitForLockWait waits until a session waits for a lock conn holds.
func waitForLockWait(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no session waited for the lock within 10 s")
}
