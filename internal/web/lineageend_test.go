package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// endSessionSoon moves session id's sign-in back so that its absolute end
// (web.session.absolute_timeout, 24 h) is left from now, as a session
// begun almost a day ago.
func endSessionSoon(t *testing.T, st *sqlstore.Store, pg bool, id string, left time.Duration) time.Time {
	t.Helper()
	end := storage.Now(time.Now().Add(left))
	setSessionTimes(t, st, pg, id, "created_at = $2, expires_at = $3", end.Add(-24*time.Hour), end)
	return end
}

// TestSignInAgainKeepsTheLineagesEnd (docs/security.md A-103): signing
// in again continues the session's lineage but not its absolute
// end, as re-authentication inside a Keycloak SSO session does not move
// SSO Session Max: the session that continues it ends when the first
// did, and the families bound to it with it, so a chain of re-sign-ins
// (sudo mode, an application's prompt=login) does not keep a family
// without offline_access alive past web.session.absolute_timeout.
// golang.org/x/oauth2 is the judge of the refresh; SQLite and PostgreSQL.
func TestSignInAgainKeepsTheLineagesEnd(t *testing.T) {
	t.Parallel()
	for _, b := range sessionBackends {
		t.Run(b.name, func(t *testing.T) {
			s, st := b.start(t)
			app := newSessionApp(t, s)
			pg := b.name == "PostgreSQL"

			before := sessionIDs(t, st)
			p := newPerson(t, s)
			p.signIn(t, "admin", "/tokens")
			first := onlySession(t, st, before)
			online := app.tokens(t, p, "openid")
			offline := app.tokens(t, p, "openid", "offline_access")
			end := endSessionSoon(t, st, pg, first, 6*time.Second)

			before = sessionIDs(t, st)
			p.signIn(t, "admin", "/tokens") // sudo mode, prompt=login
			second := onlySession(t, st, before)
			w := storedSession(t, st, second)
			if w.Lineage != first {
				t.Fatalf("signing in again began lineage %q, want the first session's %q continued", w.Lineage, first)
			}
			if !w.ExpiresAt.Equal(end) {
				t.Errorf("the session that continues the lineage ends at %v, want the lineage's end %v", w.ExpiresAt, end)
			}
			if got := app.refresh(t, online); got != "" {
				t.Fatalf("right after signing in again: refresh = %q, want the family kept (A-100)", got)
			}

			time.Sleep(time.Until(end) + 100*time.Millisecond)
			if got := app.refresh(t, online); got != "invalid_grant" || app.active(t, online) {
				t.Errorf("past the lineage's absolute end: refresh = %q, active %v; want invalid_grant, inactive", got, app.active(t, online))
			}
			if got := app.refresh(t, offline); got != "" {
				t.Errorf("past the lineage's absolute end: refresh of the offline_access family = %q, want it to outlive the session", got)
			}
			if r := p.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusSeeOther {
				t.Errorf("GET /tokens past the lineage's absolute end = %d, want 303 to sign in", r.status)
			}
		})
	}
}
