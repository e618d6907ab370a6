package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/web"
)

// TestSessionTimeouts: a session ends after web.session.idle_timeout
// without use and web.session.absolute_timeout after sign-in however busy
// (docs/security.md A-22); on an https issuer the cookie is
// __Host-sts_session, Secure, HttpOnly, SameSite=Lax.
func TestSessionTimeouts(t *testing.T) {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := storage.Now(time.Now())
	org := storage.Organization{ID: storage.NewID(), Name: "o", Tier: "free", CreatedAt: now, UpdatedAt: now}
	ada := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalUser, Name: "ada", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePrincipal(ctx, ada); err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(st, make([]byte, pat.MinPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://sts.example"
	h, err := web.New(web.Options{Issuer: issuer, Store: st, PATs: pats, IdleTimeout: time.Hour,
		AbsoluteTimeout: 3 * time.Hour, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)

	signIn := func() *http.Cookie {
		t.Helper()
		link, _, err := web.CreateLoginLink(ctx, st, audit.Caller{Actor: "test"}, issuer, ada, 0, now)
		if err != nil {
			t.Fatal(err)
		}
		_, sec, _ := strings.Cut(link, "#")
		req := httptest.NewRequest(http.MethodPost, issuer+"/login/link", strings.NewReader(url.Values{"token": {sec}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		cs := rec.Result().Cookies()
		if rec.Code != http.StatusSeeOther || len(cs) != 1 {
			t.Fatalf("sign-in: %d %v", rec.Code, cs)
		}
		c := cs[0]
		if c.Name != web.CookieSecure || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Fatalf("session cookie on an https issuer: %+v", c)
		}
		return c
	}
	signedIn := func(c *http.Cookie) bool {
		req := httptest.NewRequest(http.MethodGet, issuer+"/tokens", nil)
		req.AddCookie(c)
		id, ok := h.SignedIn().Principal(req)
		return ok && id == ada.ID
	}

	c := signIn()
	for range 3 { // used every 50 minutes: the idle timeout never strikes
		now = now.Add(50 * time.Minute)
		if !signedIn(c) {
			t.Fatalf("a session in use ended at %s", now)
		}
	}
	now = now.Add(50 * time.Minute) // 200 minutes after sign-in
	if signedIn(c) {
		t.Error("the session outlived web.session.absolute_timeout")
	}

	c = signIn()
	now = now.Add(61 * time.Minute)
	if signedIn(c) {
		t.Error("the session outlived web.session.idle_timeout")
	}
	if res, err := st.GarbageCollect(ctx, now.Add(4*time.Hour)); err != nil || res.WebSessions != 0 {
		// Both sessions were deleted when found expired; nothing is left.
		t.Errorf("GC after expiry: %+v %v", res, err)
	}
}
