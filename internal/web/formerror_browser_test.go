package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// shows waits (a few seconds at most) until the page's main part holds
// text, and fails the test with the page when it never does.
func shows(t *testing.T, ctx context.Context, what, text string) {
	t.Helper()
	js := `document.querySelector("main") !== null && document.querySelector("main").textContent.includes(` + strconv.Quote(text) + `)`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: the page never says %q: %v\n%s", what, text, err, html)
	}
}

// TestBrowserFormErrors: a form the page submits in the background
// (htmx) and the server refuses still tells the person what is wrong:
// a create with Selected scopes but none ticked says so and keeps what
// was typed; a regenerate with Custom date but no date says so; and a
// create after the session ended elsewhere says the session has ended,
// instead of the button doing nothing at all.
func TestBrowserFormErrors(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	do(t, ctx, "open the sign-in link", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))

	do(t, ctx, "fill in a token without a scope",
		chromedp.SendKeys(byLabel("Token name"), "typed by hand"),
		chromedp.Click(byLabel("Selected scopes")),
		chromedp.Click(button("Create access token")))
	shows(t, ctx, "create without a scope", "choose at least one scope")
	if v := run(t, ctx, "name kept", chromedp.Value(byLabel("Token name"))); v != "typed by hand" {
		t.Errorf("after the error the name field holds %q, not what was typed", v)
	}
	if checked := run(t, ctx, "permission kept", chromedp.JavascriptAttribute[bool](byLabel("Selected scopes"), "checked")); !checked {
		t.Error("after the error Selected scopes is no longer chosen")
	}

	do(t, ctx, "create a token", chromedp.Click(byLabel("tokens:read")),
		chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	do(t, ctx, "open it", chromedp.Click(link("Edit typed by hand")), chromedp.WaitVisible(heading("Edit access token")),
		chromedp.SetValue(byLabel("Expiration"), "custom"), chromedp.Click(button("Regenerate token")))
	shows(t, ctx, "regenerate without a date", "choose an expiry date")

	do(t, ctx, "back to the list", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(heading("Access Tokens")))
	// The session ends (another tab, a timeout) while the form is open.
	run(t, ctx, "end the session", chromedp.Evaluate[float64](
		`fetch(document.querySelector('form[action^="/sessions/"]').action, {method: "POST", redirect: "manual"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	do(t, ctx, "create after the session ended", chromedp.SendKeys(byLabel("Token name"), "too late"),
		chromedp.Click(button("Create access token")))
	shows(t, ctx, "create after the session ended", "Your session has ended")
	if html := run(t, ctx, "page", chromedp.OuterHTML(chromedp.CSS("main"))); strings.Contains(html, "pat_") {
		t.Error("a token was shown after the session ended")
	}
}
