package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// flakyDelete is a store that cannot delete a session while down is set,
// as when the database refuses writes for a moment; everything else works.
type flakyDelete struct {
	*sqlstore.Store
	down *atomic.Bool
}

func (f flakyDelete) DeleteWebSession(ctx context.Context, id string) error {
	if f.down.Load() {
		return errors.New("database is read-only just now")
	}
	return f.Store.DeleteWebSession(ctx, id)
}

// sessionOverFlakyDelete is the pages' handler on a SQLite store whose
// session deletes fail while down is set, with person p of acme signed in
// under the cookie value.
func sessionOverFlakyDelete(t *testing.T) (h *Handler, st *sqlstore.Store, p storage.Principal, value string, down *atomic.Bool) {
	t.Helper()
	ctx := t.Context()
	st = sqlitetest.NewStore(t)
	p = acmeAda(t, st)
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	down = &atomic.Bool{}
	h, err = New(Options{Issuer: "http://sts.example", Store: flakyDelete{st, down}, PATs: pats,
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	value = randomValue()
	now := storage.Now(time.Now())
	if err := st.CreateWebSession(ctx, storage.WebSession{ID: storage.NewID(), Digest: digest(value), OrgID: p.OrgID,
		PrincipalID: p.ID, Method: "link", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(8 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return h, st, p, value, down
}

// TestSignOutThatFailsSaysSo (docs/security.md T-146): a sign-out whose
// session storage could not end says so (503, "still signed in"), keeps
// the cookie and records no ended session; once storage answers, the
// same button ends it. It used to clear the cookie, record
// web.session.end "success" and send the browser to the sign-in page
// while the session lived on for whoever held a copy of the cookie (a
// shared computer, the malware T-139 names), up to
// web.session.absolute_timeout.
func TestSignOutThatFailsSaysSo(t *testing.T) {
	ctx := t.Context()
	h, st, _, value, down := sessionOverFlakyDelete(t)
	withCookie := func(r *http.Request) *http.Request {
		r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: value})
		return r
	}
	signedIn := func() bool {
		_, ok, err := h.signedIn.Principal(withCookie(httptest.NewRequest(http.MethodGet, "/tokens", nil)))
		return err == nil && ok
	}
	ended := func() int {
		evs, err := st.ListAudit(ctx, storage.AuditFilter{Action: ActionSessionEnd, Outcome: "success"})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	signOut := func() *http.Response {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, withCookie(httptest.NewRequest(http.MethodPost, "/logout", nil)))
		return w.Result()
	}

	down.Store(true)
	resp := signOut()
	if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 || !signedIn() || ended() != 0 {
		t.Fatalf("sign-out with storage down: %d, Location %q, cookies %v, still signed in %v, web.session.end success events %d; "+
			"want 503, the cookie kept, signed in, no event", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), signedIn(), ended())
	}
	// "Try signing out again": the page offers the button to do it, and
	// says who is still signed in (T-163).
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), `<form method="post" action="/logout">`) ||
		!strings.Contains(string(b), "Signed in as") {
		t.Errorf("the page saying the person is still signed in offers no Sign out:\n%s", b)
	}

	down.Store(false)
	resp = signOut()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" || signedIn() || ended() != 1 {
		t.Fatalf("sign-out with storage back: %d, Location %q, still signed in %v, events %d; want 303 to /login, signed out, one event",
			resp.StatusCode, resp.Header.Get("Location"), signedIn(), ended())
	}
}

// TestSignInOverASessionThatCannotEnd (docs/security.md T-146): signing
// in over a session ends it (T-82, T-139: a copied cookie is worthless
// after signing in again). A failure to end it was ignored: the browser
// got the new session's cookie while the old one stayed live on the
// server. Now the sign-in fails, as when the new session cannot be
// stored, and nothing new is made.
func TestSignInOverASessionThatCannotEnd(t *testing.T) {
	ctx := t.Context()
	h, st, p, value, down := sessionOverFlakyDelete(t)
	signIn := func() (*http.Response, error) {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: value})
		w := httptest.NewRecorder()
		err := h.signedIn.start(w, r, p, "link", time.Now())
		return w.Result(), err
	}
	down.Store(true)
	resp, err := signIn()
	if ss, _ := st.ListWebSessions(ctx, p.ID); err == nil || len(resp.Cookies()) != 0 || len(ss) != 1 {
		t.Errorf("sign-in over a session that cannot end: error %v, cookies %v, sessions %d; want an error, no cookie, the one session", err, resp.Cookies(), len(ss))
	}
	down.Store(false)
	resp, err = signIn()
	if ss, _ := st.ListWebSessions(ctx, p.ID); err != nil || len(resp.Cookies()) != 1 || len(ss) != 1 || secretEqualDigest(ss[0].Digest, value) {
		t.Errorf("sign-in with storage back: error %v, cookies %d, sessions %d; want the old session replaced by a new one", err, len(resp.Cookies()), len(ss))
	}
}

func secretEqualDigest(d []byte, value string) bool { return string(d) == string(digest(value)) }
