package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// idleSessionSoon moves session id's last use back so that its idle end
// (web.session.idle_timeout, 2 h) is left from now (negative: past it),
// and returns that end.
func idleSessionSoon(t *testing.T, st *sqlstore.Store, pg bool, id string, left time.Duration) time.Time {
	t.Helper()
	seen := storage.Now(time.Now().Add(left - 2*time.Hour))
	setSessionTimes(t, st, pg, id, "last_seen_at = $2", seen)
	return seen.Add(2 * time.Hour)
}

// setSessionTimes sets the time columns of session id (set
// names them as $2, $3, ...) to ts, stored as each backend stores a time.
func setSessionTimes(t *testing.T, st *sqlstore.Store, pg bool, id, set string, ts ...time.Time) {
	t.Helper()
	args := []any{id}
	for _, v := range ts {
		if pg {
			args = append(args, v)
		} else {
			args = append(args, v.UnixMicro())
		}
	}
	if _, err := st.DB().ExecContext(t.Context(), `UPDATE web_sessions SET `+set+` WHERE id = $1`, args...); err != nil {
		t.Fatal(err)
	}
}

// storedSession is the admin's session id as stored; the test fails when
// it is not.
func storedSession(t *testing.T, st *sqlstore.Store, id string) storage.WebSession {
	t.Helper()
	admin, _ := adminOf(t, st)
	list, err := st.ListWebSessions(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range list {
		if w.ID == id {
			return w
		}
	}
	t.Fatalf("session %s not stored", id)
	return storage.WebSession{}
}

// lastSeen is when the admin's session id was last used, as stored.
func lastSeen(t *testing.T, st *sqlstore.Store, id string) time.Time {
	t.Helper()
	return storedSession(t, st, id).LastSeenAt
}

// TestRefreshIsSessionActivity (docs/security.md A-104): a refresh of a
// family bound to a browser session is that session's activity,
// as at Keycloak (SSO Session Idle): it is judged by
// web.session.idle_timeout, and a successful one counts as a use of the
// session. A session idle past the timeout has ended: the refresh is
// invalid_grant, the refresh token introspects inactive and the session
// is deleted, so the browser signs in again. A refresh within the idle
// timeout keeps the session, and the browser's sign-in, alive past what
// would have been its idle end, and is written at most once a minute,
// as a page view is. An offline_access family is not bound. golang.org/x/oauth2
// is the judge of the refresh; SQLite and PostgreSQL.
func TestRefreshIsSessionActivity(t *testing.T) {
	t.Parallel()
	for _, b := range sessionBackends {
		t.Run(b.name, func(t *testing.T) {
			s, st := b.start(t)
			app := newSessionApp(t, s)
			pg := b.name == "PostgreSQL"

			before := sessionIDs(t, st)
			p := newPerson(t, s)
			p.signIn(t, "admin", "/tokens")
			id := onlySession(t, st, before)
			online := app.tokens(t, p, "openid")
			offline := app.tokens(t, p, "openid", "offline_access")

			// In use: the application refreshes seconds before the
			// session's idle end, and the session lives past it.
			idleEnd := idleSessionSoon(t, st, pg, id, 4*time.Second)
			if got := app.refresh(t, online); got != "" {
				t.Fatalf("within the idle timeout: refresh = %q, want success", got)
			}
			seen := lastSeen(t, st, id)
			if !seen.After(idleEnd.Add(-2 * time.Hour)) {
				t.Errorf("a refresh within the idle timeout left the session's last use at %v, want it moved to the refresh", seen)
			}
			if got := app.refresh(t, online); got != "" {
				t.Fatalf("a second refresh: %q, want success", got)
			}
			if again := lastSeen(t, st, id); !again.Equal(seen) {
				t.Errorf("a second refresh within the minute wrote the session's last use again (%v, then %v); want one write a minute", seen, again)
			}
			time.Sleep(time.Until(idleEnd) + 500*time.Millisecond)
			if got := app.refresh(t, online); got != "" || !app.active(t, online) {
				t.Errorf("past what was the idle end, the session used by the refresh: refresh = %q, active %v; want success, active", got, app.active(t, online))
			}
			if r := p.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
				t.Errorf("GET /tokens after the refreshes kept the session in use = %d, want 200", r.status)
			}

			// Idle: in another browser, the application refreshes after
			// that session's idle end; the session has ended.
			before = sessionIDs(t, st)
			p = newPerson(t, s)
			p.signIn(t, "admin", "/tokens")
			id = onlySession(t, st, before)
			online = app.tokens(t, p, "openid")
			offline = app.tokens(t, p, "openid", "offline_access")
			idleSessionSoon(t, st, pg, id, -time.Minute)
			if app.active(t, online) {
				t.Errorf("past the idle timeout: the refresh token introspects active, want inactive")
			}
			if got := app.refresh(t, online); got != "invalid_grant" {
				t.Errorf("past the idle timeout: refresh = %q, want invalid_grant", got)
			}
			if sessionIDs(t, st)[id] {
				t.Errorf("past the idle timeout, the refresh left session %s stored; want it ended", id)
			}
			if got := app.refresh(t, online); got != "invalid_grant" {
				t.Errorf("refresh again past the idle timeout = %q, want invalid_grant", got)
			}
			if got := app.refresh(t, offline); got != "" {
				t.Errorf("the offline_access family past the session's idle end: refresh = %q, want it to outlive the session", got)
			}
			if r := p.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusSeeOther {
				t.Errorf("GET /tokens past the idle timeout = %d, want 303 to sign in", r.status)
			}
		})
	}
}
