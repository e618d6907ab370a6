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

// TestRevokeEndsWhenDatabaseGoesAway (docs/security.md F-87): a
// revocation whose refresh-token UPDATE waits behind a stuck rotation's
// row lock while PostgreSQL then stops answering is answered 503 with
// Retry-After soon after storage.call_timeout. The write that follows the
// failed UPDATE (tokens.EndFamily keeping the family's row until it
// expires) runs detached from the request's cancellation, and ran without
// any deadline: on a black-holed database the request waited until TCP
// gave up on the connection, minutes, where F-40 promises seconds.
// (Not parallel: it bounds how soon the answer comes.)
func TestRevokeEndsWhenDatabaseGoesAway(t *testing.T) {
	const call = time.Second
	// The detached write has call_timeout of its own: 2 s in all, with
	// room for -race on a loaded machine.
	revokeWhileDatabaseGoesAway(t, call, 0, 2*call+6*time.Second)
}

// TestRevokeDetachedWriteWithinWriteTimeout (docs/security.md F-87): the
// detached write does not run past what http.write_timeout leaves for the
// response when that leaves it storage.DetachMinimum. It had a fixed 5 s:
// with call_timeout 2 s and write_timeout 3.5 s (a valid configuration)
// it ran to 7 s (call_timeout alone: 4 s), the connection's write
// deadline passed and the client read EOF instead of the 503.
// (Not parallel: it bounds how soon the answer comes.)
func TestRevokeDetachedWriteWithinWriteTimeout(t *testing.T) {
	revokeWhileDatabaseGoesAway(t, 2*time.Second, 3500*time.Millisecond, 3500*time.Millisecond+5*time.Second)
}

// TestRevokeDetachedWriteHasTimeInTightConfig (docs/security.md F-87,
// T-160): with http.write_timeout barely above storage.call_timeout (a
// valid configuration: 2 s and 2.1 s), a revocation whose UPDATE fails
// at the call deadline (a row lock) still keeps the family's revocation
// row until the family expires, on a healthy database. The detached write
// was bounded by the moment the write deadline left for the response,
// already past: it was never tried, and after the row's keep the family's
// unrevoked refresh tokens worked again.
// (Not parallel: its writes race call_timeout and write_timeout.)
func TestRevokeDetachedWriteHasTimeInTightConfig(t *testing.T) {
	direct := ststest.PostgresDSN(t)
	e := newCodeEnv(t, func(c *config.Config) {
		c.Storage.Type = "postgres"
		c.Storage.DSN = direct
		c.Issuer, c.IssuerDerived = "http://"+c.Listen, false
		setCallTimeout(c, 2*time.Second)
		c.HTTP.WriteTimeout = 2100 * time.Millisecond
	})
	tok := e.tokenFor(t, e.user, "notes.read")
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
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
	// The revocation's UPDATE of the family's refresh tokens waits for
	// these locks until its call deadline.
	if _, err := tx.Exec(ctx, `SELECT id FROM refresh_tokens FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"token": {tok.RefreshToken}}
	req, err := http.NewRequest(http.MethodPost, e.base+"/oauth2/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.conf.ID, e.secret)
	start := time.Now()
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("revoke answered %d after %s", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	} else {
		// The answer may be cut off by the write deadline; the row
		// matters.
		t.Logf("revoke after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	// The server's cancel of its timed-out UPDATE reaches PostgreSQL
	// asynchronously: release the locks only once nothing waits for them,
	// or the UPDATE could still take them and commit.
	for waitUntil := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`,
			holder.PgConn().PID()).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(waitUntil) {
			t.Fatal("a query still waits for the row locks 10 s after the answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}

	var family string
	var famExp time.Time
	if err := holder.QueryRow(ctx, `SELECT family_id, expires_at FROM refresh_tokens LIMIT 1`).Scan(&family, &famExp); err != nil {
		t.Fatal(err)
	}
	var revoked bool
	if err := holder.QueryRow(ctx, `SELECT bool_and(revoked) FROM refresh_tokens WHERE family_id = $1`, family).Scan(&revoked); err != nil {
		t.Fatal(err)
	}
	if revoked {
		t.Fatal("the family's refresh tokens were revoked: the UPDATE did not wait for the row lock, so nothing was tested")
	}
	var rowExp time.Time
	if err := holder.QueryRow(ctx, `SELECT expires_at FROM revocations WHERE id = $1`, "grant:"+family).Scan(&rowExp); err != nil {
		t.Fatalf("the family's grant row: %v", err)
	}
	if rowExp.Before(famExp) {
		t.Errorf("the family's revocation row ends at %s, before the family (%s): the detached write keeping it (T-160) was not tried; after the row ends the unrevoked refresh tokens work again",
			rowExp.UTC().Format(time.RFC3339), famExp.UTC().Format(time.RFC3339))
	}
}

// revokeWhileDatabaseGoesAway revokes a refresh token whose row another
// session holds locked, black-holes PostgreSQL once the revocation waits,
// and wants a 503 with Retry-After within bound.
func revokeWhileDatabaseGoesAway(t *testing.T, call, writeTimeout, bound time.Duration) {
	t.Helper()
	direct := ststest.PostgresDSN(t)
	proxy, proxied := faultproxy.PostgresDSN(t, direct)
	e := newCodeEnv(t, func(c *config.Config) {
		c.Storage.Type = "postgres"
		c.Storage.DSN = proxied
		c.Issuer, c.IssuerDerived = "http://"+c.Listen, false
		setCallTimeout(c, call)
		if writeTimeout > 0 {
			c.HTTP.WriteTimeout = writeTimeout
		}
	})
	// Registered after newCodeEnv's, so it runs first: whatever the
	// outcome, the server's shutdown never waits on a black hole.
	t.Cleanup(proxy.Close)
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
		resp, err := (&http.Client{Timeout: bound + 5*time.Second}).Do(req)
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

	select {
	case a := <-done:
		if a.err != nil {
			t.Fatalf("revoke after %s: %v, want 503", a.took.Round(time.Millisecond), a.err)
		}
		if a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
			t.Errorf("revoke: %d Retry-After %q, want 503 with Retry-After", a.status, a.retryAfter)
		}
		t.Logf("revoke answered %d after %s", a.status, a.took.Round(time.Millisecond))
		if a.took > bound {
			t.Errorf("revoke answered after %s, want within %s", a.took.Round(time.Millisecond), bound)
		}
	case <-time.After(bound + 10*time.Second):
		t.Fatalf("revoke not answered within %s of a black-holed database", bound+10*time.Second)
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
