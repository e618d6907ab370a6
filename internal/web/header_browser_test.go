package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// header is the text of the page's header, where it says who is signed in.
func header(t *testing.T, ctx context.Context) string {
	t.Helper()
	return run(t, ctx, "header", chromedp.Evaluate[string](`document.querySelector("header").textContent`))
}

// headerSays waits (a few seconds at most) until the header holds text.
func headerSays(t *testing.T, ctx context.Context, what, text string) {
	t.Helper()
	js := `document.querySelector("header").textContent.includes(` + strconv.Quote(text) + `)`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Fatalf("%s: the header never says %q: %q", what, text, header(t, ctx))
	}
}

// TestBrowserHeaderAfterSwap: a form sent in the background (htmx)
// replaces only the page's main part; the header, which says who is
// signed in, must follow what the answer says. A create after the
// session ended elsewhere says "Signed out" and no longer "Signed in as";
// a create after another person signed in to this browser meanwhile
// (another tab) is refused, the form not being theirs (docs/security.md
// T-165), and the header names them, not the one who opened the page.
func TestBrowserHeaderAfterSwap(t *testing.T) {
	s := startServer(t)
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")
	ctx := browser(t)
	do(t, ctx, "sign in", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	headerSays(t, ctx, "signed in", "Signed in as admin")

	run(t, ctx, "end the session", chromedp.Evaluate[float64](
		`fetch(document.querySelector('form[action^="/sessions/"]').action, {method: "POST", redirect: "manual"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	do(t, ctx, "create after the session ended", chromedp.SendKeys(byLabel("Token name"), "too late"),
		chromedp.Click(button("Create access token")))
	shows(t, ctx, "create after the session ended", "Your session has ended")
	if h := header(t, ctx); strings.Contains(h, "Signed in as") || strings.Contains(h, "Sign out") {
		t.Errorf("after the session ended the header still says %q", h)
	}

	do(t, ctx, "sign in again", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	// grace signs in to the same browser in another tab: her link
	// replaces admin's session once the switch is confirmed.
	link := s.loginLink(t, "grace")
	code := link[strings.Index(link, "#")+1:]
	run(t, ctx, "grace signs in meanwhile", chromedp.Evaluate[float64](
		`fetch("/login/link", {method: "POST", redirect: "manual", body: new URLSearchParams({token: `+strconv.Quote(code)+`, switch: "1"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	do(t, ctx, "create after grace signed in", chromedp.SendKeys(byLabel("Token name"), "whose"),
		chromedp.Click(button("Create access token")))
	shows(t, ctx, "create after grace signed in", "This form was not made for you")
	headerSays(t, ctx, "create after grace signed in", "Signed in as grace")
}

// TestBrowserHeaderAfterRefusal (docs/security.md T-163): a refusal sent
// in the background replaces the header too (T-122), so it must name the
// person still signed in. A regenerate of a token deleted meanwhile in
// another tab was answered "Not possible" with a header naming nobody and
// no Sign out button, while the session lived on: a person at a shared
// computer took the browser for signed out.
func TestBrowserHeaderAfterRefusal(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	do(t, ctx, "sign in", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	do(t, ctx, "create", chromedp.SendKeys(byLabel("Token name"), "gone soon"),
		chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	do(t, ctx, "open it", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(heading("Access Tokens")),
		chromedp.Click(link("Edit gone soon")), chromedp.WaitVisible(heading("Edit access token")))
	run(t, ctx, "delete it in another tab", chromedp.Evaluate[float64](
		`fetch(location.pathname + "/delete", {method: "POST", redirect: "manual"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	// Mark the header the page was opened with: the refusal must replace it
	// (T-122), not merely leave it as it was.
	run(t, ctx, "mark the header", chromedp.Evaluate[string](`document.querySelector("header").dataset.opened = "1"`))
	do(t, ctx, "regenerate the deleted token", chromedp.Click(button("Regenerate token")))
	shows(t, ctx, "regenerate the deleted token", "not found")
	headerSays(t, ctx, "after the refusal", "Signed in as admin")
	if kept := run(t, ctx, "header replaced", chromedp.Evaluate[bool](`document.querySelector("header").dataset.opened === "1"`)); kept {
		t.Error("the refusal did not replace the header: the test saw the header the page was opened with")
	}
	if n := run(t, ctx, "sign-out button", chromedp.Evaluate[float64](`document.querySelectorAll('header form[action="/logout"] button').length`)); n != 1 {
		t.Errorf("after the refusal the header has %v Sign out buttons, want 1: %q", n, header(t, ctx))
	}
}
