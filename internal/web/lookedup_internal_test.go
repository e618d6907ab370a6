package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// sessionReads is a store that counts session reads, fails the next
// failReads of them (a database busy for a moment), and, while slowLists
// is set, lists sessions only once the request's deadline has passed (a
// slow database, cut off by storage.call_timeout, docs/reliability.md).
type sessionReads struct {
	*sqlstore.Store
	reads, failReads *atomic.Int32
	slowLists        *atomic.Bool
}

func (s sessionReads) GetWebSessionByDigest(ctx context.Context, d []byte) (storage.WebSession, error) {
	s.reads.Add(1)
	if s.failReads.Add(-1) >= 0 {
		return storage.WebSession{}, errors.New("database busy for a moment")
	}
	return s.Store.GetWebSessionByDigest(ctx, d)
}

func (s sessionReads) ListWebSessions(ctx context.Context, principalID string) ([]storage.WebSession, error) {
	if s.slowLists.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.ListWebSessions(ctx, principalID)
}

type readsFixture struct {
	h     *Handler
	st    *sqlstore.Store
	p     storage.Principal
	value string
	store sessionReads
	log   *logbuf.Buffer
}

// overSessionReads is the pages' handler on a SQLite store wrapped in
// sessionReads, with ada of acme signed in under value.
func overSessionReads(t *testing.T) readsFixture {
	t.Helper()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	p := acmeAda(t, st)
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	f := readsFixture{st: st, p: p, value: randomValue(), log: &logbuf.Buffer{},
		store: sessionReads{st, &atomic.Int32{}, &atomic.Int32{}, &atomic.Bool{}}}
	f.h, err = New(Options{Issuer: "http://sts.example", Store: f.store, PATs: pats, Logger: slog.New(slog.NewTextHandler(f.log, nil)),
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := storage.Now(time.Now())
	if err := st.CreateWebSession(ctx, storage.WebSession{ID: storage.NewID(), Digest: digest(f.value), OrgID: p.OrgID,
		PrincipalID: p.ID, Method: "link", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(8 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return f
}

// send sends r in the background (htmx) with f's cookie; it returns the
// answer and its header (the part of the page that says who is signed in,
// hx-swap-oob, docs/security.md T-122), then the rest of the page.
func (f readsFixture) send(r *http.Request) (*http.Response, string, string) {
	r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: f.value})
	r.Header.Set("HX-Request", "true")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	head, rest, _ := strings.Cut(string(b), "</header>")
	return w.Result(), head, rest
}

// TestRefusalAfterStorageTimeoutNamesThePerson (docs/security.md T-163):
// a 503 because a storage call ran out the request's deadline
// (storage.call_timeout) still names the person signed in, with Sign
// out. The page looked the session up again with the spent context,
// failed (logging an ERROR for it) and its header named nobody.
func TestRefusalAfterStorageTimeoutNamesThePerson(t *testing.T) {
	f := overSessionReads(t)
	f.store.slowLists.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	resp, head, _ := f.send(httptest.NewRequestWithContext(ctx, http.MethodPost, "/sessions/x/end", nil))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(head, "Signed in as <strong>ada</strong>") ||
		!strings.Contains(head, `action="/logout"`) {
		t.Errorf("storage timed out: %d, header %q; want 503 naming ada, with Sign out", resp.StatusCode, head)
	}
	if l := f.log.String(); strings.Contains(l, "session lookup failed") {
		t.Errorf("a session lookup failed after the handler's own had succeeded:\n%s", l)
	}
}

// TestRefusalReadsTheSessionOnce: a refusal of a signed-in page (a token
// not found, 404) reads the session once, as the page's other answers
// do; the page read it a second time to name its person.
func TestRefusalReadsTheSessionOnce(t *testing.T) {
	f := overSessionReads(t)
	resp, head, _ := f.send(httptest.NewRequest(http.MethodGet, "/tokens/00000000-0000-0000-0000-000000000000", nil))
	if n := f.store.reads.Load(); resp.StatusCode != http.StatusNotFound || n != 1 || !strings.Contains(head, "Signed in as <strong>ada</strong>") {
		t.Errorf("GET a token not found: %d, %d session reads, header %q; want 404, 1 read, naming ada", resp.StatusCode, n, head)
	}
}

// TestUnreadableSessionIsTryAgain (docs/security.md T-146, T-163): a
// page behind sign-in whose session storage could not read (a database
// busy or down for a moment, storage.call_timeout) is 503 (its
// Retry-After is the server's: app TestPagesAnswer503WithRetryAfter),
// keeps the cookie and the session, and says to try
// again, under a header naming nobody (a second read must not name
// someone). A form was answered 401 "Your session has ended" and a page
// load was sent to sign in, though the session was live: a person
// signed in again for nothing, or took the browser for signed out.
func TestUnreadableSessionIsTryAgain(t *testing.T) {
	f := overSessionReads(t)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/tokens", strings.NewReader("")),
		httptest.NewRequest(http.MethodGet, "/tokens", nil),
		httptest.NewRequest(http.MethodGet, "/", nil),
	} {
		f.store.failReads.Store(1)
		f.store.reads.Store(0)
		resp, head, rest := f.send(r)
		if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 {
			t.Errorf("%s %s with the session unreadable: %d, Location %q, cookies %v; want 503, the cookie kept",
				r.Method, r.URL, resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
		}
		if strings.Contains(head, "Signed in as") || strings.Contains(head, "/logout") || f.store.reads.Load() != 1 {
			t.Errorf("%s %s with the session unreadable: header %q after %d session reads; want one read and a header naming nobody",
				r.Method, r.URL, head, f.store.reads.Load())
		}
		if strings.Contains(rest, "ended") || strings.Contains(rest, "Signed out") || !strings.Contains(rest, "try again") {
			t.Errorf("%s %s with the session unreadable says it ended or not to try again:\n%s", r.Method, r.URL, rest)
		}
	}
	if ss, err := f.st.ListWebSessions(t.Context(), f.p.ID); err != nil || len(ss) != 1 {
		t.Fatalf("sessions after the failed reads: %d, %v; want the one, live", len(ss), err)
	}
	resp, head, _ := f.send(httptest.NewRequest(http.MethodGet, "/tokens", nil))
	if resp.StatusCode != http.StatusOK || !strings.Contains(head, "Signed in as <strong>ada</strong>") {
		t.Errorf("GET /tokens with storage back: %d, header %q; want 200 naming ada", resp.StatusCode, head)
	}
}

// TestSignOutThatCannotReadTheSessionSaysSo (docs/security.md T-146): a
// sign-out whose session storage could not read says so (503) and keeps
// the cookie, and the session; the next sign-out ends it. It took the
// failed read for "no session": it cleared the cookie and sent the
// browser to the sign-in page while the session lived on for whoever
// held a copy of the cookie.
func TestSignOutThatCannotReadTheSessionSaysSo(t *testing.T) {
	f := overSessionReads(t)
	f.store.failReads.Store(1)
	resp, _, rest := f.send(httptest.NewRequest(http.MethodPost, "/logout", nil))
	ss, err := f.st.ListWebSessions(t.Context(), f.p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 || len(ss) != 1 {
		t.Fatalf("sign-out with the session unreadable: %d, Location %q, cookies %v, sessions %d; want 503, the cookie kept, the session live",
			resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), len(ss))
	}
	// "Try signing out again": the header cannot name anyone, so the page
	// itself offers the button (T-163).
	if !strings.Contains(rest, `<form method="post" action="/logout">`) {
		t.Errorf("the page asking to sign out again offers no Sign out:\n%s", rest)
	}
	resp, _, _ = f.send(httptest.NewRequest(http.MethodPost, "/logout", nil))
	if ss, _ := f.st.ListWebSessions(t.Context(), f.p.ID); resp.StatusCode != http.StatusSeeOther || len(ss) != 0 {
		t.Errorf("sign-out with storage back: %d, sessions %d; want 303 and none", resp.StatusCode, len(ss))
	}
}

// TestSignInOverASessionThatCannotBeRead (docs/security.md T-146):
// signing in over a session ends it first; a session that could not be
// read was taken for none, so the new session's cookie replaced the old
// one in the browser while the old one stayed live on the server.
func TestSignInOverASessionThatCannotBeRead(t *testing.T) {
	f := overSessionReads(t)
	f.store.failReads.Store(1)
	r := httptest.NewRequest(http.MethodPost, "/login/link", nil)
	r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: f.value})
	w := httptest.NewRecorder()
	err := f.h.signedIn.start(w, r, f.p, "link", time.Now())
	if ss, _ := f.st.ListWebSessions(t.Context(), f.p.ID); err == nil || len(w.Result().Cookies()) != 0 || len(ss) != 1 {
		t.Errorf("sign-in over a session that could not be read: error %v, cookies %v, sessions %d; want an error, no cookie, the one session",
			err, w.Result().Cookies(), len(ss))
	}
}
