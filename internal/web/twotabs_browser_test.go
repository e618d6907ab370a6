package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserTwoTabsSignIn (docs/security.md T-201): a person starts a
// sign-in through the provider in one tab, then another in a second tab
// (a second sts page opened meanwhile, an application's authorization
// request), and finishes the first at the provider only then. Each tab's
// sign-in must come back to its own page: the second start used to
// replace the first's flow, so the first came back "Sign-in did not
// complete", and, that failure having cleared the flow, so did the
// second.
func TestBrowserTwoTabsSignIn(t *testing.T) {
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "u-2", "email": "tab@example.com", "email_verified": true})
	p.mu.Lock()
	p.Hold = true
	p.mu.Unlock()

	first := browser(t)
	start := func(ctx context.Context, tab string) {
		t.Helper()
		do(t, ctx, "tab "+tab+" starts a sign-in", chromedp.Navigate(s.URL+"/login?return_to=%2Ftokens%3Ftab%3D"+tab),
			chromedp.Click(button("Sign in with Test IdP")), chromedp.WaitVisible(heading("Test IdP")))
	}
	finish := func(ctx context.Context, tab string) {
		t.Helper()
		do(t, ctx, "tab "+tab+" continues at the provider", chromedp.Click(link("Continue")),
			chromedp.WaitVisible(`//h1[normalize-space()='Access Tokens' or normalize-space()='Sign-in failed']`))
		h1 := run(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1")))
		at := run(t, ctx, "location", chromedp.Location())
		if h1 != "Access Tokens" || !strings.HasSuffix(at, "/tokens?tab="+tab) {
			t.Errorf("tab %s came back to %q at %s, want Access Tokens at /tokens?tab=%s", tab, h1, at, tab)
		}
	}
	start(first, "a")
	// Another tab of the same browser (the browser runs once the first
	// tab has).
	second, cancel := chromedp.NewContext(first)
	t.Cleanup(cancel)
	start(second, "b")
	finish(first, "a")
	finish(second, "b")
}
