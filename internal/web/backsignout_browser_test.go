package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserBackAfterSignOutShowsNoSecret (docs/security.md T-84): a
// person creates a token, reads its secret, signs out and walks away; the
// next person at the browser presses Back. The page they reach must not
// show the secret, nor the token list.
func TestBrowserBackAfterSignOutShowsNoSecret(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	do(t, ctx, "sign in", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	do(t, ctx, "fill in", chromedp.SendKeys(byLabel("Token name"), "laptop"))
	do(t, ctx, "create", chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	tok := run(t, ctx, "read the secret", chromedp.Value(byLabel("Your new access token")))
	do(t, ctx, "sign out", chromedp.Click(button("Sign out")), chromedp.WaitVisible(heading("Sign in")))
	// history.back() ends the evaluation by navigating; the page is
	// then let settle (the browser asks for /tokens again, as the page
	// is no-store, and is sent to sign in).
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[any](`history.back()`))
	do(t, ctx, "wait", chromedp.Sleep(2*time.Second))
	run(t, ctx, "settled", chromedp.Poll[bool](`document.readyState === "complete" && !!document.querySelector("h1")`))
	// The page reached must be the Back's: a test whose Back never
	// happened would otherwise judge the sign-out page itself.
	nav := run(t, ctx, "how the page was reached", chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].type`))
	if nav != "back_forward" {
		t.Fatalf("the page after Back was reached by %q, not by Back", nav)
	}
	at := run(t, ctx, "where", chromedp.Location())
	html := run(t, ctx, "page after back", chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(html, tok) || strings.Contains(html, "laptop") || !strings.Contains(at, "/login") {
		t.Fatalf("back after sign-out is at %s and shows the signed-out person's tokens (secret shown: %v)", at, strings.Contains(html, tok))
	}
}
