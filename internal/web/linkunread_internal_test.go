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
	st := sqlitetest.NewStore(t)
	ada := acmeAda(t, st)
	bob := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "bob"}
	if err := st.CreatePrincipal(ctx, bob); err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	store := laterSessionReads{st, &atomic.Int32{}, &atomic.Int32{}}
	h, err := New(Options{Issuer: "http://sts.example", Store: store, PATs: pats, Logger: slog.New(slog.DiscardHandler),
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	value, code, now := randomValue(), randomValue(), storage.Now(time.Now())
	if err := st.CreateWebSession(ctx, storage.WebSession{ID: storage.NewID(), Digest: digest(value), OrgID: ada.OrgID,
		PrincipalID: ada.ID, Method: "link", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(8 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateLoginLink(ctx, storage.LoginLink{ID: storage.NewID(), OrgID: bob.OrgID, PrincipalID: bob.ID,
		Digest: digest(code), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	bring := func() (*http.Response, string) {
		r := httptest.NewRequest(http.MethodPost, "http://sts.example/login/link",
			strings.NewReader(url.Values{"token": {code}, "return_to": {"/tokens"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://sts.example")
		r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: value})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result(), w.Body.String()
	}
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
