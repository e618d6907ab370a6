package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opensts/sts/internal/secret"
)

// TestBrowserReauthBeforeNewToken drives chromium through "sudo mode"
// (docs/security.md T-139): a person signed in through the upstream
// provider over two hours ago (web.session.reauth_after's default) fills
// in the new-token form and clicks Create; the page asks to sign in again
// and creates nothing. The link leads to the sign-in page, the provider
// signs the person in again, and the browser is back at the form as it
// was filled in, with no token yet; Create then shows the secret.
func TestBrowserReauthBeforeNewToken(t *testing.T) {
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "email", "default"))
	ctx := browser(t)
	idp.signInAs(map[string]any{"sub": "u-9", "email": "erin@example.com", "email_verified": true})
	do(t, ctx, "sign in with the provider", chromedp.Navigate(s.URL+"/login"),
		chromedp.Click(button("Sign in with Test IdP")), chromedp.WaitVisible(heading("Access Tokens")))

	s.ageSessions(t, 3*time.Hour)
	do(t, ctx, "fill in the new token",
		chromedp.SendKeys(byLabel("Token name"), "ci deploy"),
		chromedp.Click(byLabel("Full Access")),
		chromedp.SetValue(byLabel("Expiration"), "60"),
	)
	do(t, ctx, "create with an old sign-in", chromedp.Click(button("Create access token")), chromedp.WaitVisible(link("Sign in again")))
	if text := run(t, ctx, "the page", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(text, "needs a recent sign-in") ||
		strings.Contains(text, string(secret.PrefixPAT)) {
		t.Errorf("after Create with an old sign-in the page says:\n%s", text)
	}

	do(t, ctx, "sign in again", chromedp.Click(link("Sign in again")), chromedp.WaitVisible(heading("Sign in")),
		chromedp.Click(button("Sign in with Test IdP")), chromedp.WaitVisible(heading("Access Tokens")))
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, s.URL+"/tokens?") {
		t.Errorf("after signing in again the browser is at %q, not back at the form", loc)
	}
	if name := run(t, ctx, "token name", chromedp.Value(byLabel("Token name"))); name != "ci deploy" {
		t.Errorf("the token name after signing in again is %q", name)
	}
	if full := run(t, ctx, "Full Access", chromedp.JavascriptAttribute[bool](byLabel("Full Access"), "checked")); !full {
		t.Error("Full Access is no longer chosen after signing in again")
	}
	if exp := run(t, ctx, "expiration", chromedp.Value(byLabel("Expiration"))); exp != "60" {
		t.Errorf("the expiration after signing in again is %q", exp)
	}
	if text := run(t, ctx, "the list", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(text, "You have no access tokens.") {
		t.Errorf("a token was made before the fresh sign-in:\n%s", text)
	}

	do(t, ctx, "create after signing in again", chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	tok := run(t, ctx, "read the secret", chromedp.Value(byLabel("Your new access token")))
	if secret.PrefixPAT.Parse(tok) != nil {
		t.Fatalf("the page showed %q, not a PAT", tok)
	}
	if code, subject := s.identity(t, tok); code != 200 || subject == "" {
		t.Errorf("GetAuthenticatedIdentity with the new token: %d %q", code, subject)
	}
	if loc := run(t, ctx, "location", chromedp.Location()); strings.Contains(loc, tok) {
		t.Error("the secret is in the URL")
	}
}
