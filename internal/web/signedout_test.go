package web_test

import (
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/web"
)

var signInAgain = regexp.MustCompile(`<a href="([^"]*)">Sign in again</a>`)

// TestSignedOutReturnsToThePage: a form sent after the session ended is
// answered "Signed out" with a link to sign in again that comes back to
// the page the person was on: the page htmx says it was sent from
// (HX-Current-URL), when that is on this server, else the page the form
// belongs to. Anything else (another origin, "//host", a backslash, their
// encoded forms, a "." or ".." segment that would make one once the
// redirect or the browser resolves it) comes back to /tokens: never an
// open redirect (docs/security.md T-85, T-123). Each link is followed to
// the end: signing in with its return_to must redirect to want.
func TestSignedOutReturnsToThePage(t *testing.T) {
	t.Parallel()
	st := sqlitetest.NewStore(t)
	pats, err := pat.NewService(st, make([]byte, pat.MinPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "http://sts.test"
	h, err := web.New(web.Options{Issuer: issuer, Store: st, PATs: pats, IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	_, ada := orgWithUser(t, st, time.Now())
	const id = "01JABCDEF"
	for _, c := range []struct{ path, current, want string }{
		{"/tokens", "", "/tokens"},
		{"/tokens/" + id, "", "/tokens/" + id},
		{"/tokens/" + id + "/regenerate", "", "/tokens/" + id},
		{"/tokens/" + id + "/delete", "", "/tokens/" + id + "/delete"},
		{"/tokens/delete-all", "", "/tokens/delete-all"},
		{"/host-tokens/" + id + "/delete", "", "/tokens"},
		{"/sessions/" + id + "/end", "", "/tokens"},
		{"/consents/c1/revoke", "", "/tokens"},
		{"/tokens", issuer + "/tokens?pats=abc", "/tokens?pats=abc"},
		{"/tokens/" + id + "/regenerate", issuer + "/tokens/" + id, "/tokens/" + id},
		{"/tokens", "https://evil.example/tokens", "/tokens"},
		{"/tokens", "http://sts.test.evil.example/tokens", "/tokens"},
		{"/tokens", "http://sts.test@evil.example/tokens", "/tokens"},
		{"/tokens", "//evil.example/x", "/tokens"},
		{"/tokens", "/\\evil.example", "/tokens"},
		{"/tokens", issuer + "/\\evil.example", "/tokens"},
		{"/tokens", issuer + "//evil.example", "/tokens"},
		{"/tokens", issuer + "/%2F%2Fevil.example", "/tokens"},
		{"/tokens", issuer + "/%5Cevil.example", "/tokens"},
		{"/tokens", issuer + "/%5cevil.example", "/tokens"},
		{"/tokens", issuer + "/a/../%2F%2Fevil.example", "/tokens"},
		{"/tokens", issuer + "/./%2F%2Fevil.example", "/tokens"},
		{"/tokens", issuer + "/%2e%2e/%2F%2Fevil.example", "/tokens"},
		{"/tokens", issuer + "/tokens/%2E%2e/%2F%2Fevil.example", "/tokens"},
		{"/tokens", issuer + "/tokens/.%2e/%2F%2Fevil.example?x=1", "/tokens"},
		{"/tokens", issuer + "/tokens/%2e/x", "/tokens"},
		{"/tokens", "javascript:alert(1)", "/tokens"},
		{"/tokens", "/tokens", "/tokens"},
	} {
		req := httptest.NewRequest(http.MethodPost, issuer+c.path, strings.NewReader("name=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.current != "" {
			req.Header.Set("HX-Request", "true")
			req.Header.Set("HX-Current-URL", c.current)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		m := signInAgain.FindStringSubmatch(rec.Body.String())
		if rec.Code != http.StatusUnauthorized || m == nil {
			t.Errorf("POST %s without a session: %d, no link to sign in again:\n%s", c.path, rec.Code, rec.Body)
			continue
		}
		u, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil || u.Path != "/login" || u.Host != "" || u.Query().Get("return_to") != c.want {
			t.Errorf("POST %s from %q: the link is %q, want /login?return_to=%s", c.path, c.current, m[1], c.want)
		}
		if err != nil {
			continue
		}
		// Where signing in from that link really goes: http.Redirect
		// cleans the path it is given, so the check must hold for the
		// Location sent, not only for the value kept.
		link, _, err := web.CreateLoginLink(t.Context(), st, audit.Caller{Actor: "test"}, issuer, ada, 0, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, sec, _ := strings.Cut(link, "#")
		signIn := postForm(mux, issuer+"/login/link", url.Values{"token": {sec}, "return_to": {u.Query().Get("return_to")}}, nil)
		if loc := signIn.Header().Get("Location"); signIn.Code != http.StatusSeeOther || loc != c.want {
			t.Errorf("signing in from the link of POST %s from %q: %d Location %q, want %s", c.path, c.current, signIn.Code, loc, c.want)
		}
	}
}

// TestBrowserSignedOutReturnsToThePage: the person is on a token's page
// when their session ends; regenerating says they are signed out, and
// signing in again from there brings them back to that token's page,
// not to the list.
func TestBrowserSignedOutReturnsToThePage(t *testing.T) {
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "email", "default"))
	ctx := browser(t)
	idp.signInAs(map[string]any{"sub": "u-7", "email": "dora@example.com", "email_verified": true})
	do(t, ctx, "sign in", chromedp.Navigate(s.URL+"/login"), chromedp.Click(button("Sign in with Test IdP")),
		chromedp.WaitVisible(heading("Access Tokens")))
	do(t, ctx, "create a token", chromedp.SendKeys(byLabel("Token name"), "deploy"),
		chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")),
		chromedp.Click(link("Edit deploy")), chromedp.WaitVisible(heading("Edit access token")))
	page := run(t, ctx, "location", chromedp.Location())
	run(t, ctx, "end the session", chromedp.Evaluate[float64](
		`fetch("/logout", {method: "POST", redirect: "manual"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	do(t, ctx, "regenerate after the session ended", chromedp.Click(button("Regenerate token")))
	shows(t, ctx, "regenerate after the session ended", "Your session has ended")
	if n := run(t, ctx, "link", chromedp.Evaluate[float64](`document.querySelectorAll("main a").length`)); n == 0 {
		t.Fatal("the signed-out answer has no link")
	}
	href := run(t, ctx, "link", chromedp.Evaluate[string](`document.querySelector("main a").getAttribute("href")`))
	do(t, ctx, "sign in again", chromedp.Click(`//main//a`), chromedp.WaitVisible(heading("Sign in")),
		chromedp.Click(button("Sign in with Test IdP")), chromedp.WaitVisible(heading("Edit access token")))
	if got := run(t, ctx, "location", chromedp.Location()); got != page {
		t.Errorf("signing in again from the signed-out answer (link %q) led to %s, want the page the person was on, %s", href, got, page)
	}
}
