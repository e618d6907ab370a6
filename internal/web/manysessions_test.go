package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/web"
)

// TestSessionsBounded (docs/security.md T-208): every sign-in makes a
// session, so a person signed in again and again (a script, a provider
// that answers at once) kept every one, each read and drawn by every
// /tokens after. A sign-in past web.MaxSessions ends the person's oldest:
// its cookie signs in no more, the rest and the newest stay live, the
// page lists no more than the bound, and another person's are untouched.
func TestSessionsBounded(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")
	grace := newPerson(t, s)
	grace.signIn(t, "grace", "/tokens")

	people := make([]*person, web.MaxSessions+2)
	for i := range people {
		people[i] = newPerson(t, s)
		people[i].signIn(t, "admin", "/tokens")
	}
	admin := principalsNamed(t, s, "admin")
	if len(admin) != 1 {
		t.Fatalf("admin: %q", admin)
	}
	wantSessionsLeft(t, s.store(t), admin[0], web.MaxSessions)
	for i, p := range people {
		r := p.do(t, http.MethodGet, "/tokens", nil, nil)
		live := r.status == http.StatusOK
		if want := i >= 2; live != want {
			t.Errorf("sign-in %d of %d: /tokens %d, live %v, want %v", i+1, len(people), r.status, live, want)
		}
	}
	if r := grace.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
		t.Errorf("another person's session ended: /tokens %d", r.status)
	}
}

// sessionBackend starts sts on one storage backend and opens that storage
// for the test to read and seed.
type sessionBackend struct {
	name  string
	start func(t *testing.T) (*server, *sqlstore.Store)
}

var sessionBackends = []sessionBackend{
	{"SQLite", func(t *testing.T) (*server, *sqlstore.Store) {
		s := startServer(t)
		return s, s.store(t)
	}},
	{"PostgreSQL", func(t *testing.T) (*server, *sqlstore.Store) {
		dsn := pgtest.DSN(t)
		s := startServerPG(t, dsn)
		st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return s, st
	}},
}

// adminOf is the id and organization of the principal "admin".
func adminOf(t *testing.T, st *sqlstore.Store) (string, string) {
	t.Helper()
	ps, err := st.ListPrincipals(t.Context(), mustOrg(t, st))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == "admin" {
			return p.ID, p.OrgID
		}
	}
	t.Fatal("no principal admin")
	return "", ""
}

// wantSessionsLeft fails the test unless principal has want sessions
// stored.
func wantSessionsLeft(t *testing.T, st *sqlstore.Store, principal string, want int) {
	t.Helper()
	list, err := st.ListWebSessions(t.Context(), principal)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != want {
		t.Errorf("%d sessions left, want %d", len(list), want)
	}
}

// storeSessions stores n sessions of principal, made from created on a
// millisecond apart (as other browsers, or another replica, did).
func storeSessions(t *testing.T, st *sqlstore.Store, principal, org string, n int, created time.Time) {
	t.Helper()
	for i := range n {
		at := storage.Now(created.Add(time.Duration(i) * time.Millisecond))
		if err := st.CreateWebSession(t.Context(), storage.WebSession{ID: storage.NewID(), Digest: []byte(storage.NewID()),
			OrgID: org, PrincipalID: principal, Method: "link", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSignInKeepsItsOwnSession (docs/security.md T-208): the bound ended
// the person's oldest sessions by their stored start, so when the other
// 50 had started later than this replica's clock says now (another
// replica a little ahead, this clock stepped back) the sign-in ended the
// session it had just made: 303 with a cookie that signed nobody in. The
// new session is never among those ended.
func TestSignInKeepsItsOwnSession(t *testing.T) {
	t.Parallel()
	for _, b := range sessionBackends {
		t.Run(b.name, func(t *testing.T) {
			s, st := b.start(t)
			id, org := adminOf(t, st)
			storeSessions(t, st, id, org, web.MaxSessions, time.Now().Add(2*time.Second))
			p := newPerson(t, s)
			p.signIn(t, "admin", "/tokens")
			if r := p.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
				t.Errorf("signed in, then /tokens %d: the sign-in ended its own session", r.status)
			}
			wantSessionsLeft(t, st, id, web.MaxSessions)
		})
	}
}

// TestConcurrentSignInsKeepTheBound (docs/security.md T-208): 20 sign-ins
// at once by a person who has 50 sessions: every new one signs in and 50
// are left.
func TestConcurrentSignInsKeepTheBound(t *testing.T) {
	t.Parallel()
	for _, b := range sessionBackends {
		t.Run(b.name, func(t *testing.T) {
			s, st := b.start(t)
			id, org := adminOf(t, st)
			storeSessions(t, st, id, org, web.MaxSessions, time.Now().Add(-time.Hour))
			links := make([]string, 20)
			for i := range links {
				links[i] = s.loginLink(t, "admin")
			}
			people := make([]*person, len(links))
			codes := make([]int, len(links))
			var wg sync.WaitGroup
			for i := range links {
				people[i] = newPerson(t, s)
				wg.Go(func() {
					_, sec, _ := strings.Cut(links[i], "#")
					form := url.Values{"token": {sec}, "return_to": {"/tokens"}}
					req, _ := http.NewRequest(http.MethodPost, s.URL+"/login/link", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := people[i].c.Do(req)
					if err == nil {
						codes[i] = resp.StatusCode
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			for i, p := range people {
				if codes[i] != http.StatusSeeOther {
					t.Errorf("sign-in %d: %d, want 303", i, codes[i])
					continue
				}
				if r := p.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
					t.Errorf("sign-in %d: /tokens %d", i, r.status)
				}
			}
			wantSessionsLeft(t, st, id, web.MaxSessions)
		})
	}
}

// TestSessionBacklogEndedAtOnce (docs/security.md T-208): a person with
// 400 sessions (stored before the bound) signs in once. The sign-in ended
// the 351 over the bound one DELETE and one log line at a time (about a
// second), and the audit trail said nothing of them. Now one statement
// ends them: one log line and one audit event say how many, and 50 are
// left.
func TestSessionBacklogEndedAtOnce(t *testing.T) {
	t.Parallel()
	for _, b := range sessionBackends {
		t.Run(b.name, func(t *testing.T) {
			s, st := b.start(t)
			id, org := adminOf(t, st)
			storeSessions(t, st, id, org, 400, time.Now().Add(-time.Hour))
			p := newPerson(t, s)
			p.signIn(t, "admin", "/tokens")
			var lines []string
			for l := range strings.Lines(s.logs.String()) {
				if strings.Contains(l, "web session ended") || strings.Contains(l, "web sessions ended") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], `"ended":351`) {
				t.Errorf("%d log lines of ended sessions, want one saying 351:\n%s", len(lines), strings.Join(lines[:min(len(lines), 3)], ""))
			}
			wantSessionsLeft(t, st, id, web.MaxSessions)
			evs, err := st.ListAudit(t.Context(), storage.AuditFilter{Action: web.ActionSessionEnd, Target: "principal:" + id})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Outcome != "success" || evs[0].Actor != "principal:"+id || !strings.HasPrefix(evs[0].Detail, "351 ") {
				t.Errorf("audit events of the sessions ended: %+v, want one by admin saying 351", evs)
			}
		})
	}
}
