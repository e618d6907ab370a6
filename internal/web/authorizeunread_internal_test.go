package web

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/authorize"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// laterSessionReads is a store whose session reads succeed pass more
// times and then fail fail times (a database busy for a moment, or a read
// cut off by storage.call_timeout), then succeed again.
type laterSessionReads struct {
	*sqlstore.Store
	pass, fail *atomic.Int32
}

func (s laterSessionReads) GetWebSessionByDigest(ctx context.Context, d []byte) (storage.WebSession, error) {
	if s.pass.Add(-1) < 0 && s.fail.Add(-1) >= 0 {
		return storage.WebSession{}, errors.New("database busy for a moment")
	}
	return s.Store.GetWebSessionByDigest(ctx, d)
}

// failAfter makes the session reads after the next pass fail fail times.
func (s laterSessionReads) failAfter(pass, fail int32) {
	s.pass.Store(pass)
	s.fail.Store(fail)
}

// authorizeFixture is the authorization and end-session endpoints on the
// pages' own seam (*SignedIn), served over loopback, with ada of acme
// signed in under value and acme's client "rp" (openid, offline_access;
// redirect URI https://rp.example/cb).
type authorizeFixture struct {
	st     *sqlstore.Store
	store  laterSessionReads
	p      storage.Principal
	value  string
	srv    *httptest.Server
	client *http.Client
}

const rpCallback = "https://rp.example/cb"

func overLaterSessionReads(t *testing.T) authorizeFixture {
	t.Helper()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	p := acmeAda(t, st)
	pepper := []byte("0123456789abcdef0123456789abcdef")
	pats, err := pat.NewService(st, pepper)
	if err != nil {
		t.Fatal(err)
	}
	f := authorizeFixture{st: st, p: p, value: randomValue(), store: laterSessionReads{st, &atomic.Int32{}, &atomic.Int32{}},
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	h, err := New(Options{Issuer: "http://sts.example", Store: f.store, PATs: pats, Logger: slog.New(slog.DiscardHandler),
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, storage.Client{ID: "rp", OrgID: p.OrgID, PrincipalID: p.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid", oauth2.ScopeOfflineAccess},
		RedirectURIs: []string{rpCallback}}); err != nil {
		t.Fatal(err)
	}
	now := storage.Now(time.Now())
	if err := st.CreateWebSession(ctx, storage.WebSession{ID: storage.NewID(), Digest: digest(f.value), OrgID: p.OrgID,
		PrincipalID: p.ID, Method: "link", CreatedAt: now, AuthAt: now, LastSeenAt: now, ExpiresAt: now.Add(8 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&authorize.Handler{Store: st, SignedIn: h.SignedIn(), Pepper: pepper}).Mount(mux)
	(&authorize.Logout{Store: st, SignedIn: h.SignedIn(), Pepper: pepper}).Mount(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// consent remembers ada's consent to rp for scopes.
func (f authorizeFixture) consent(t *testing.T, scopes ...string) {
	t.Helper()
	now := storage.Now(time.Now())
	if err := f.st.PutConsent(t.Context(), storage.Consent{PrincipalID: f.p.ID, ClientID: "rp", Scopes: scopes,
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// send sends r with ada's cookie; it returns the answer and its body.
func (f authorizeFixture) send(t *testing.T, r *http.Request) (*http.Response, string) {
	t.Helper()
	r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: f.value})
	resp, err := f.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// authorizeRequest is a GET of rp's authorization request, edited.
func (f authorizeFixture) authorizeRequest(edit func(url.Values)) *http.Request {
	v := url.Values{"client_id": {"rp"}, "redirect_uri": {rpCallback}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s1"}, "nonce": {"n1"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	if edit != nil {
		edit(v)
	}
	r, _ := http.NewRequest(http.MethodGet, f.srv.URL+authorize.Path+"?"+v.Encode(), nil)
	return r
}

// mustBeLive fails t unless ada's session is still stored.
func (f authorizeFixture) mustBeLive(t *testing.T) {
	t.Helper()
	if ss, err := f.st.ListWebSessions(t.Context(), f.p.ID); err != nil || len(ss) != 1 {
		t.Fatalf("sessions after the failed read: %d, %v; want the one, live", len(ss), err)
	}
}

// redirectError is the error (and state) a redirect to rp's callback
// carries, read as the client reads it (RFC 6749 §4.1.2.1); ok is false
// for an answer that is not a redirect there.
func redirectError(resp *http.Response) (code, state, errCode string, ok bool) {
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), rpCallback+"?") {
		return "", "", "", false
	}
	q := loc.Query()
	return q.Get("code"), q.Get("state"), q.Get("error"), true
}

// TestAuthorizeWithUnreadableSessionIsTryAgain (docs/security.md T-146):
// an authorization request whose session storage could not read (the
// principal and its sign-in time, read together) is answered as a
// temporary condition at every decision that needs it:
// temporarily_unavailable at the client's (validated) address where the
// answer goes there (prompt=none, a code), else a 503 page saying to try
// again; never as if nobody were signed in, never a code without its
// sign-in time, and the cookie and session kept. It was login_required
// for prompt=none, a redirect to sign in again for a page load (also
// before an error was sent to the client, T-103), login_required for
// max_age and prompt=login, and a code whose ID token had no auth_time.
func TestAuthorizeWithUnreadableSessionIsTryAgain(t *testing.T) {
	f := overLaterSessionReads(t)
	f.consent(t, "openid", oauth2.ScopeOfflineAccess)
	for _, tc := range []struct {
		name string
		edit func(url.Values)
		// redirect: temporarily_unavailable at the client; else a 503 page.
		redirect bool
	}{
		{"prompt=none", func(v url.Values) { v.Set("prompt", "none") }, true},
		{"page load", nil, false},
		{"refusal sent to the client after sign-in", func(v url.Values) { v.Set("scope", "openid unknown") }, false},
		{"max_age=0, prompt=none", func(v url.Values) { v.Set("max_age", "0"); v.Set("prompt", "none") }, true},
		{"prompt=login", func(v url.Values) { v.Set("prompt", "login") }, false},
		{"max_age=3600", func(v url.Values) { v.Set("max_age", "3600") }, false},
		{"offline_access, prompt=none", func(v url.Values) {
			v.Set("scope", "openid "+oauth2.ScopeOfflineAccess)
			v.Set("prompt", "none")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.store.failAfter(0, 1) // the one read (TestAuthorizeReadsTheSessionOnce)
			resp, body := f.send(t, f.authorizeRequest(tc.edit))
			if len(resp.Cookies()) != 0 {
				t.Errorf("cookies %v; want the cookie kept", resp.Cookies())
			}
			code, state, errCode, redirected := redirectError(resp)
			switch {
			case tc.redirect && (!redirected || code != "" || errCode != oauth2.ErrorTemporarilyUnavailable || state != "s1"):
				t.Errorf("session unreadable: %d, Location %q; want error=%s with state s1 at the client, no code",
					resp.StatusCode, resp.Header.Get("Location"), oauth2.ErrorTemporarilyUnavailable)
			case !tc.redirect && (resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" ||
				!strings.Contains(body, "try again")):
				t.Errorf("session unreadable: %d, Location %q; want a 503 page saying to try again\n%s",
					resp.StatusCode, resp.Header.Get("Location"), body)
			}
			f.mustBeLive(t)
		})
	}
	// Storage back: the same session is signed in, and silent
	// authentication brings a code.
	f.store.failAfter(0, 0)
	resp, _ := f.send(t, f.authorizeRequest(func(v url.Values) { v.Set("prompt", "none") }))
	if code, _, errCode, ok := redirectError(resp); !ok || code == "" {
		t.Errorf("prompt=none with storage back: %d, error %q; want a code", resp.StatusCode, errCode)
	}
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// TestConsentDecisionWithUnreadableSessionIsTryAgain (docs/security.md
// T-146): an Allow whose session storage could not read (with its
// sign-in time, to judge the sign-in recent enough,
// T-140) is a 503 saying to try again, and the form posted again with
// storage back brings the code. It was 403 "Your session ended before
// you decided" (or a redirect to sign in again), though it had not.
func TestConsentDecisionWithUnreadableSessionIsTryAgain(t *testing.T) {
	f := overLaterSessionReads(t)
	resp, body := f.send(t, f.authorizeRequest(nil))
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if resp.StatusCode != http.StatusOK || !form.Has("sts_consent_csrf") {
		t.Fatalf("consent screen: %d, fields %v\n%s", resp.StatusCode, form, body)
	}
	form.Set("sts_consent_decision", "approve")
	decide := func() (*http.Response, string) {
		r, _ := http.NewRequest(http.MethodPost, f.srv.URL+authorize.Path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", f.srv.URL)
		return f.send(t, r)
	}
	f.store.failAfter(0, 1) // the one read (TestAuthorizeReadsTheSessionOnce)
	resp, body = decide()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" || len(resp.Cookies()) != 0 ||
		!strings.Contains(body, "try again") || strings.Contains(body, "ended") {
		t.Errorf("Allow, session unreadable: %d, Location %q, cookies %v; want a 503 saying to try again, the cookie kept\n%s",
			resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), body)
	}
	f.mustBeLive(t)
	if _, err := f.st.GetConsent(t.Context(), f.p.ID, "rp"); err == nil {
		t.Errorf("Allow, session unreadable: the consent was stored")
	}
	f.store.failAfter(0, 0)
	resp, _ = decide()
	if code, _, errCode, ok := redirectError(resp); !ok || code == "" {
		t.Errorf("Allow with storage back: %d, error %q; want a code", resp.StatusCode, errCode)
	}
}

// TestEndSessionWithUnreadableSessionIsTryAgain (docs/security.md T-146):
// the end-session endpoint, asked without an id_token_hint, whose session
// storage could not read is a 503 saying the person may still be signed
// in, the cookie and session kept. It answered 200 "You are signed out
// of sts" while the session lived on (the person walked away from a
// shared computer, T-139); a POST from the application was asked
// nothing either.
func TestEndSessionWithUnreadableSessionIsTryAgain(t *testing.T) {
	f := overLaterSessionReads(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		f.store.failAfter(0, 1)
		r, _ := http.NewRequest(method, f.srv.URL+authorize.LogoutPath, strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := f.send(t, r)
		if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 ||
			strings.Contains(body, "signed out") || !strings.Contains(body, "Try again") {
			t.Errorf("%s %s, session unreadable: %d, cookies %v; want a 503 saying to try again, the cookie kept\n%s",
				method, authorize.LogoutPath, resp.StatusCode, resp.Cookies(), body)
		}
		f.mustBeLive(t)
	}
	// Storage back: the person is asked, as anyone signed in without a hint.
	f.store.failAfter(0, 0)
	r, _ := http.NewRequest(http.MethodGet, f.srv.URL+authorize.LogoutPath, nil)
	if resp, body := f.send(t, r); resp.StatusCode != http.StatusOK || !strings.Contains(body, "sts_logout_confirm") {
		t.Errorf("GET %s with storage back: %d; want the question\n%s", authorize.LogoutPath, resp.StatusCode, body)
	}
}

// TestAuthorizeReadsTheSessionOnce (docs/security.md T-146): one
// authorization request, and one Allow, reads the session once, the
// principal and its sign-in time together. An Allow read it three times
// and stored (and audited) the consent before the third read, the code's
// sign-in time: when only that read failed the client was told
// temporarily_unavailable, no code, with the consent remembered; a
// request read it up to four times, each one more chance of such a
// failure midway.
func TestAuthorizeReadsTheSessionOnce(t *testing.T) {
	f := overLaterSessionReads(t)
	resp, body := f.send(t, f.authorizeRequest(nil))
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if resp.StatusCode != http.StatusOK || !form.Has("sts_consent_csrf") {
		t.Fatalf("consent screen: %d, fields %v\n%s", resp.StatusCode, form, body)
	}
	form.Set("sts_consent_decision", "approve")
	// Every read after the first fails: an Allow that needs one read is
	// answered in full.
	f.store.failAfter(1, 1000)
	r, _ := http.NewRequest(http.MethodPost, f.srv.URL+authorize.Path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", f.srv.URL)
	resp, _ = f.send(t, r)
	code, _, errCode, _ := redirectError(resp)
	_, cerr := f.st.GetConsent(t.Context(), f.p.ID, "rp")
	if code == "" || cerr != nil {
		t.Errorf("Allow, reads after the first failing: %d, error %q, consent stored: %v; want a code and the consent",
			resp.StatusCode, errCode, cerr == nil)
	}
	// A request that reads the sign-in time at every step: consented,
	// offline_access (a recent sign-in), max_age, the code's auth_time.
	f.consent(t, "openid", oauth2.ScopeOfflineAccess)
	f.store.failAfter(1000, 0)
	resp, _ = f.send(t, f.authorizeRequest(func(v url.Values) {
		v.Set("scope", "openid "+oauth2.ScopeOfflineAccess)
		v.Set("max_age", "3600")
	}))
	if code, _, errCode, _ := redirectError(resp); code == "" {
		t.Fatalf("consented request: %d, error %q; want a code", resp.StatusCode, errCode)
	}
	if reads := 1000 - f.store.pass.Load(); reads != 1 {
		t.Errorf("one authorization request read the session %d times; want once", reads)
	}
}
