package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/authorize"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/web"
)

type fakeConsents struct {
	list    []web.Consent
	revoked string
}

func (f *fakeConsents) ListConsents(context.Context, string) ([]web.Consent, error) {
	return f.list, nil
}
func (f *fakeConsents) RevokeConsent(_ context.Context, _ audit.Caller, principalID, clientID string) error {
	f.revoked = principalID + "/" + clientID
	return nil
}

func serve(h http.Handler, c *http.Cookie, method, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "https://sts.example"+path, nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestSessionTimeouts: a session ends after web.session.idle_timeout
// without use and web.session.absolute_timeout after sign-in however busy
// (docs/security.md A-22); on an https issuer the cookie is
// __Host-sts_session, Secure, HttpOnly, SameSite=Lax.
func TestSessionTimeouts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := storage.Now(time.Now())
	f := newSessionFx(t, &now, 3*time.Hour)
	st, ada, pats, h, mux := f.st, f.ada, f.pats, f.h, f.mux
	signIn := func() *http.Cookie {
		t.Helper()
		c := f.signIn(t)
		if c.Name != web.CookieSecure || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Fatalf("session cookie on an https issuer: %+v", c)
		}
		return c
	}
	signedIn := func(c *http.Cookie) bool {
		req := httptest.NewRequest(http.MethodGet, sessionIssuer+"/tokens", nil)
		req.AddCookie(c)
		id, ok, err := h.SignedIn().Principal(req)
		return err == nil && ok && id == ada.ID
	}

	// "Authorized applications": hidden without a consent store (above),
	// listed and withdrawn through it when one is given.
	if rec := serve(mux, signIn(), http.MethodGet, "/tokens"); strings.Contains(rec.Body.String(), "Authorized applications") {
		t.Error("the Authorized applications section shows without a consent store")
	}
	consents := &fakeConsents{list: []web.Consent{{ClientID: "app-1", ClientName: "<b>Deploy bot</b>", Scopes: []string{"openid", "email"}, GrantedAt: now}}}
	hc, err := web.New(web.Options{Issuer: sessionIssuer, Store: st, PATs: pats, Consents: consents, IdleTimeout: time.Hour,
		AbsoluteTimeout: 3 * time.Hour, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cmux := http.NewServeMux()
	hc.Mount(cmux)
	cookie := signIn()
	body := serve(cmux, cookie, http.MethodGet, "/tokens").Body.String()
	if !strings.Contains(body, "Authorized applications") || !strings.Contains(body, "&lt;b&gt;Deploy bot&lt;/b&gt;") || !strings.Contains(body, "openid email") {
		t.Errorf("the consent is not listed (escaped):\n%s", body)
	}
	if rec := serve(cmux, cookie, http.MethodPost, "/consents/app-1/revoke"); rec.Code != http.StatusConflict || consents.revoked != "" {
		t.Errorf("revoke naming nobody (docs/security.md A-107): %d %q", rec.Code, consents.revoked)
	}
	req := httptest.NewRequest(http.MethodPost, "https://sts.example/consents/app-1/revoke", strings.NewReader(forForm(t, reply{body: body}).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	cmux.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || consents.revoked != ada.ID+"/app-1" {
		t.Errorf("revoke: %d %q", rec.Code, consents.revoked)
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
	// The two sessions found expired above were deleted on use; the GC
	// removes the two of the consent checks, never used again.
	if res, err := st.GarbageCollect(ctx, now.Add(4*time.Hour)); err != nil || res.WebSessions != 2 {
		t.Errorf("GC after expiry: %+v %v", res, err)
	}
}

// TestSignedInSeam: the seam the authorization endpoint uses sends a
// signed-out browser to sign in and back to a local path only
// (docs/security.md T-85).
func TestSignedInSeam(t *testing.T) {
	t.Parallel()
	st := sqlitetest.NewStore(t)
	pats, _ := pat.NewService(st, make([]byte, pat.MinPepperSize))
	h, err := web.New(web.Options{Issuer: "https://sts.example", Store: st, PATs: pats, IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seam := h.SignedIn()
	req := httptest.NewRequest(http.MethodGet, "https://sts.example/oauth2/authorize?client_id=a&state=b", nil)
	req.AddCookie(&http.Cookie{Name: web.CookieSecure, Value: strings.Repeat("x", 43)})
	if id, ok, err := seam.Principal(req); ok || id != "" || err != nil {
		t.Errorf("Principal with an unknown session = %q, %v, %v", id, ok, err)
	}
	for returnTo, want := range map[string]string{
		"/oauth2/authorize?client_id=a&state=b": "/login?return_to=%2Foauth2%2Fauthorize%3Fclient_id%3Da%26state%3Db",
		"https://evil.example/x":                "/login?return_to=%2Ftokens",
		"//evil.example/x":                      "/login?return_to=%2Ftokens",
	} {
		rec := httptest.NewRecorder()
		seam.SignIn(rec, req, returnTo)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("SignIn(%q): %d %q, want %q", returnTo, rec.Code, rec.Header().Get("Location"), want)
		}
		// A relying party's prompt=login or max_age: the same, as a
		// re-authentication (docs/security.md T-178).
		rec = httptest.NewRecorder()
		seam.SignInAgain(rec, req, returnTo)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want+"&reauth=1" {
			t.Errorf("SignInAgain(%q): %d %q, want %q", returnTo, rec.Code, rec.Header().Get("Location"), want+"&reauth=1")
		}
	}
}

// TestSignedInAuthTime: the seam tells the authorization endpoint when the
// session's person signed in (authorize.SignedInAt), for the ID token's
// auth_time and for max_age and prompt=login (OIDC Core §2, §3.1.2.1): the
// moment of sign-in, however much the session is used since, and a new
// moment at every sign-in; nothing for a browser without a session.
func TestSignedInAuthTime(t *testing.T) {
	t.Parallel()
	now := storage.Now(time.Now())
	f := newSessionFx(t, &now, 8*time.Hour)
	seam, ok := any(f.h.SignedIn()).(authorize.SignedInAt)
	if !ok {
		t.Fatal("*web.SignedIn does not implement authorize.SignedInAt: no auth_time, no max_age")
	}
	signIn := func() *http.Cookie { return f.signIn(t) }
	authTime := func(c *http.Cookie) (time.Time, bool) {
		req := httptest.NewRequest(http.MethodGet, sessionIssuer+authorize.Path, nil)
		if c != nil {
			req.AddCookie(c)
		}
		at, ok, err := seam.AuthTime(req)
		if err != nil {
			t.Fatalf("AuthTime: %v", err)
		}
		return at, ok
	}

	if at, ok := authTime(nil); ok {
		t.Errorf("AuthTime without a session = %v, true", at)
	}
	first := now
	c := signIn()
	for range 3 { // in use every 50 minutes: the sign-in moment stays
		now = now.Add(50 * time.Minute)
		if at, ok := authTime(c); !ok || !at.Equal(first) {
			t.Fatalf("AuthTime at %s = %v, %v, want the sign-in %s", now, at, ok, first)
		}
	}
	second := now
	c = signIn()
	if at, ok := authTime(c); !ok || !at.Equal(second) {
		t.Errorf("AuthTime after signing in again = %v, %v, want %s", at, ok, second)
	}
}

// sessionFx is the web handler of an https issuer over SQLite, with the
// user ada, whose clock is *now; signIn signs ada in by a login link.
type sessionFx struct {
	st   *sqlstore.Store
	ada  storage.Principal
	pats *pat.Service
	h    *web.Handler
	mux  *http.ServeMux
	now  *time.Time
}

const sessionIssuer = "https://sts.example"

func newSessionFx(t *testing.T, now *time.Time, absolute time.Duration) *sessionFx {
	t.Helper()
	f := &sessionFx{st: sqlitetest.NewStore(t), now: now, mux: http.NewServeMux()}
	org := storage.Organization{ID: storage.NewID(), Name: "o", Tier: "free", CreatedAt: *now, UpdatedAt: *now}
	f.ada = storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalUser, Name: "ada", CreatedAt: *now, UpdatedAt: *now}
	if err := f.st.CreateOrganization(t.Context(), org); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreatePrincipal(t.Context(), f.ada); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.pats, err = pat.NewService(f.st, make([]byte, pat.MinPepperSize)); err != nil {
		t.Fatal(err)
	}
	f.h, err = web.New(web.Options{Issuer: sessionIssuer, Store: f.st, PATs: f.pats, IdleTimeout: time.Hour,
		AbsoluteTimeout: absolute, Now: func() time.Time { return *now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.h.Mount(f.mux)
	return f
}

func (f *sessionFx) signIn(t *testing.T) *http.Cookie {
	t.Helper()
	link, _, err := web.CreateLoginLink(t.Context(), f.st, audit.Caller{Actor: "test"}, sessionIssuer, f.ada, 0, "", *f.now)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(link, "#")
	req := httptest.NewRequest(http.MethodPost, sessionIssuer+"/login/link", strings.NewReader(url.Values{"token": {sec}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	cs := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cs) != 1 {
		t.Fatalf("sign-in: %d %v", rec.Code, cs)
	}
	return cs[0]
}

// postForm posts form to target on h, with the session cookie c when set.
func postForm(h http.Handler, target string, form url.Values, c *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// signInByLink signs p in on h through a one-time link made in st, and
// returns the session cookie.
func signInByLink(t *testing.T, h http.Handler, st web.LinkStore, issuer string, p storage.Principal, now time.Time) *http.Cookie {
	t.Helper()
	link, _, err := web.CreateLoginLink(t.Context(), st, audit.Caller{Actor: "test"}, issuer, p, 0, "", now)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(link, "#")
	return postForm(h, issuer+"/login/link", url.Values{"token": {sec}}, nil).Result().Cookies()[0]
}

// orgWithUser stores, as of now, an organization and its user ada.
func orgWithUser(t *testing.T, st storage.Store, now time.Time) (storage.Organization, storage.Principal) {
	t.Helper()
	org := storage.Organization{ID: storage.NewID(), Name: "o", Tier: "free", CreatedAt: now, UpdatedAt: now}
	ada := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalUser, Name: "ada", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateOrganization(t.Context(), org); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePrincipal(t.Context(), ada); err != nil {
		t.Fatal(err)
	}
	return org, ada
}

// TestAbsoluteTimeoutLoweredEndsOlderSessions: a session ends
// web.session.absolute_timeout after sign-in as the server is configured
// now, not as it was when the person signed in: lowering the setting (and
// restarting, or rolling out replicas) ends the sessions already older
// than the new bound at their next use, and the page no longer lists
// them (docs/security.md A-71).
func TestAbsoluteTimeoutLoweredEndsOlderSessions(t *testing.T) {
	t.Parallel()
	now := storage.Now(time.Now())
	f := newSessionFx(t, &now, 24*time.Hour) // the old configuration
	old := f.signIn(t)
	lowered, err := web.New(web.Options{Issuer: sessionIssuer, Store: f.st, PATs: f.pats, IdleTimeout: time.Hour,
		AbsoluteTimeout: 2 * time.Hour, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lmux := http.NewServeMux()
	lowered.Mount(lmux)
	signedIn := func(h *web.Handler, c *http.Cookie) bool {
		req := httptest.NewRequest(http.MethodGet, sessionIssuer+"/tokens", nil)
		req.AddCookie(c)
		_, ok, err := h.SignedIn().Principal(req)
		return err == nil && ok
	}
	for range 2 { // in use every 50 minutes: the idle timeout never strikes
		now = now.Add(50 * time.Minute)
		if !signedIn(lowered, old) {
			t.Fatalf("a session in use ended at %s under a 2-hour bound", now)
		}
	}
	fresh := signInByLink(t, lmux, f.st, sessionIssuer, f.ada, now)
	now = now.Add(50 * time.Minute) // 2h30 after the first sign-in
	// A replica still on the old configuration keeps the old session in
	// use; the page of a replica on the new one does not list it.
	if !signedIn(f.h, old) {
		t.Fatal("the old configuration ended the session early")
	}
	page := serve(lmux, fresh, http.MethodGet, "/tokens").Body.String()
	if n := strings.Count(page, `action="/sessions/`); n != 1 {
		t.Errorf("the page lists %d sessions, want only the one within the lowered bound", n)
	}
	if signedIn(lowered, old) {
		t.Error("a session begun 2h30 ago is still accepted under web.session.absolute_timeout 2h")
	}
	if !signedIn(lowered, fresh) {
		t.Error("the session begun 1h10 ago ended")
	}
}
