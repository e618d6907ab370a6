package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestLinkOverUnreadableSessionIsTryAgain (docs/security.md T-105,
// T-146): another person's sign-in link brought by a browser whose
// session storage could not read just then is a 503 saying to try
// again, the link unspent and the session and cookie kept; tried again,
// it asks before switching. The failed read was taken for no session:
// the sign-in, reading the session again, ended ada's session and signed
// the browser in as bob unasked, which a link of Mallory's put on her
// site does to whoever visits it (login CSRF).
func TestLinkOverUnreadableSessionIsTryAgain(t *testing.T) {
	ctx := t.Context()
	f := overLinkSessionReads(t)
	st, store, ada, bob := f.st, f.store, f.ada, f.bob
	code := f.mint(t, bob)
	bring := func() (*http.Response, string) { return f.bring(code) }
	store.failAfter(0, 1)
	resp, body := bring()
	if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 || !strings.Contains(body, "try again") {
		t.Errorf("bob's link, ada's session unreadable: %d, Location %q, cookies %v; want a 503 saying to try again, the cookie kept\n%s",
			resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), body)
	}
	if ss, err := st.ListWebSessions(ctx, ada.ID); err != nil || len(ss) != 1 {
		t.Errorf("ada's sessions after bob's link: %d, %v; want hers, live", len(ss), err)
	}
	if ss, err := st.ListWebSessions(ctx, bob.ID); err != nil || len(ss) != 0 {
		t.Errorf("bob's sessions after his link: %d, %v; want none, unasked", len(ss), err)
	}
	store.failAfter(0, 0)
	if resp, body := bring(); resp.StatusCode != http.StatusOK || !strings.Contains(body, "bob") || len(resp.Cookies()) != 0 {
		t.Errorf("bob's link again, storage back: %d, cookies %v; want the question naming bob, the link unspent\n%s",
			resp.StatusCode, resp.Cookies(), body)
	}
}

// TestLinkOverUnreadableSessionNamesNobody (docs/security.md T-163): the
// 503 for a session storage could not read names nobody, even if a second
// read would find one. Its page read the session again and said "Signed
// in as ada" under "could not check your session".
func TestLinkOverUnreadableSessionNamesNobody(t *testing.T) {
	f := overLinkSessionReads(t)
	f.store.failAfter(0, 1)
	resp, body := f.bring(f.mint(t, f.bob))
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "Signed in as") || strings.Contains(body, "ada") {
		t.Errorf("bob's link, ada's session unreadable once: %d; want a 503 naming nobody\n%s", resp.StatusCode, body)
	}
}

// TestOwnLinkReadsTheSessionOnce (docs/security.md T-146): a sign-in link
// reads the browser's session once, before it is spent, and the sign-in
// ends the session found without reading it again. The sign-in read it a
// second time after the link was spent: when only that read failed the
// answer was 503 "try again", and the retry "invalid, expired or already
// used".
func TestOwnLinkReadsTheSessionOnce(t *testing.T) {
	f := overLinkSessionReads(t)
	f.store.failAfter(1, 1000) // every read after the first fails
	resp, body := f.bring(f.mint(t, f.ada))
	ss, err := f.st.ListWebSessions(t.Context(), f.ada.ID)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || err != nil || len(ss) != 1 ||
		secretEqualDigest(ss[0].Digest, f.value) {
		t.Errorf("ada's own link, reads after the first failing: %d, cookies %v, sessions %d (%v); want 303, a new session replacing hers\n%s",
			resp.StatusCode, resp.Cookies(), len(ss), err, body)
	}
}

// linkFixture is the pages over laterSessionReads, with ada of acme
// signed in under value and bob of acme, who has no session.
type linkFixture struct {
	h        *Handler
	st       *sqlstore.Store
	store    laterSessionReads
	ada, bob storage.Principal
	value    string
}

func overLinkSessionReads(t *testing.T) linkFixture {
	t.Helper()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	f := linkFixture{st: st, store: laterSessionReads{st, &atomic.Int32{}, &atomic.Int32{}}, ada: acmeAda(t, st),
		bob: storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "bob"}, value: randomValue()}
	if err := st.CreatePrincipal(ctx, f.bob); err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	f.h, err = New(Options{Issuer: "http://sts.example", Store: f.store, PATs: pats, Logger: slog.New(slog.DiscardHandler),
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := storage.Now(time.Now())
	if err := st.CreateWebSession(ctx, storage.WebSession{ID: storage.NewID(), Digest: digest(f.value), OrgID: f.ada.OrgID,
		PrincipalID: f.ada.ID, Method: "link", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(8 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return f
}

// mint stores a sign-in link of p and returns its code.
func (f linkFixture) mint(t *testing.T, p storage.Principal) string {
	t.Helper()
	code, now := randomValue(), storage.Now(time.Now())
	if err := f.st.CreateLoginLink(t.Context(), storage.LoginLink{ID: storage.NewID(), OrgID: p.OrgID, PrincipalID: p.ID,
		Digest: digest(code), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return code
}

// bring posts code from the link page with ada's cookie.
func (f linkFixture) bring(code string) (*http.Response, string) {
	r := httptest.NewRequest(http.MethodPost, "http://sts.example/login/link",
		strings.NewReader(url.Values{"token": {code}, "return_to": {"/tokens"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "http://sts.example")
	r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: f.value})
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w.Result(), w.Body.String()
}
