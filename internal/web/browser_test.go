package web_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opensts/sts/internal/secret"
)

var screenshots = flag.Bool("screenshots", false, "write a screenshot of each page to docs/images (TestBrowser)")

// byLabel finds the form control a <label> names, the way a person (or a
// screen reader) finds it.
func byLabel(label string) string {
	return `//*[@id=//label[normalize-space()='` + label + `']/@for]`
}

// button finds a button by its visible text; link a link by its
// accessible name (aria-label, else its text).
func button(text string) string { return `//button[normalize-space()='` + text + `']` }
func link(name string) string {
	return `//a[@aria-label='` + name + `' or (not(@aria-label) and normalize-space()='` + name + `')]`
}
func heading(text string) string { return `//h1[normalize-space()='` + text + `']` }

// browser starts Debian's chromium headless with a fresh profile. Without
// chromium the test is skipped, except in CI (CI=true), where .ci/run
// installs it and its absence is a failure.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI=true): .ci/run installs it")
		}
		t.Skip("chromium is not installed: apt-get install chromium to run the browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
	}
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 45*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*screenshots {
		return
	}
	buf := run(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "docs", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web-"+name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser drives a real chromium through the page as a person would:
// sign in with a one-time link, create a token (No Access is the
// default), read its secret once, go back and reload (gone both times),
// use it, regenerate it (old secret 401, new one works), delete it, sign
// out, and sign in again through an upstream OpenID Connect provider.
func TestBrowser(t *testing.T) {
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "email", "default"))
	ctx := browser(t)

	if *screenshots {
		do(t, ctx, "sign-in page", chromedp.Navigate(s.URL+"/login"), chromedp.WaitVisible(heading("Sign in")))
		shot(t, ctx, "login")
	}
	do(t, ctx, "open the sign-in link", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != s.URL+"/tokens" {
		t.Errorf("after sign-in the browser is at %q, want %s/tokens", loc, s.URL)
	}
	if checked := run(t, ctx, "No Access checked", chromedp.JavascriptAttribute[bool](byLabel("No Access"), "checked")); !checked {
		t.Error("No Access is not the default permission")
	}

	do(t, ctx, "fill in the new token",
		chromedp.SendKeys(byLabel("Token name"), "ci deploy"),
		chromedp.Click(byLabel("Full Access")),
	)
	shot(t, ctx, "tokens-new")
	do(t, ctx, "create", chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	first := run(t, ctx, "read the secret", chromedp.Value(byLabel("Your new access token")))
	if *screenshots {
		// The picture in docs/ shows the shape of a secret, never one,
		// not even this throwaway server's.
		shown := string(secret.PrefixPAT) + strings.Repeat("x", len(first)-len(secret.PrefixPAT))
		do(t, ctx, "redact for the picture", chromedp.SetValue(byLabel("Your new access token"), shown))
		shot(t, ctx, "token-created")
		do(t, ctx, "restore", chromedp.SetValue(byLabel("Your new access token"), first))
	}
	if err := secret.PrefixPAT.Parse(first); err != nil {
		t.Fatalf("the page showed %q, not a PAT: %v", first, err)
	}
	if loc := run(t, ctx, "location", chromedp.Location()); strings.Contains(loc, first) {
		t.Error("the secret is in the URL")
	}

	// Away and back: the page comes from the server again (no-store), and
	// without the secret.
	do(t, ctx, "away", chromedp.Click(link("Edit ci deploy")), chromedp.WaitVisible(heading("Edit access token")))
	do(t, ctx, "back", chromedp.NavigateBack(), chromedp.WaitVisible(heading("Access Tokens")))
	if html := run(t, ctx, "page after back", chromedp.OuterHTML(chromedp.CSS("html"))); strings.Contains(html, first) {
		t.Fatal("the secret is shown again after the back button")
	}
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(heading("Access Tokens")))
	if html := run(t, ctx, "page after reload", chromedp.OuterHTML(chromedp.CSS("html"))); strings.Contains(html, first) {
		t.Fatal("the secret is shown again after a reload")
	}
	shot(t, ctx, "tokens")

	code, subject := s.identity(t, first)
	if code != 200 || subject == "" {
		t.Fatalf("GetAuthenticatedIdentity with the new token: %d %q", code, subject)
	}

	do(t, ctx, "open the token", chromedp.Click(link("Edit ci deploy")), chromedp.WaitVisible(heading("Edit access token")))
	shot(t, ctx, "token-edit")
	do(t, ctx, "regenerate", chromedp.Click(button("Regenerate token")), chromedp.WaitVisible(byLabel("Your new access token")))
	second := run(t, ctx, "read the new secret", chromedp.Value(byLabel("Your new access token")))
	if second == first || secret.PrefixPAT.Parse(second) != nil {
		t.Fatalf("regenerated secret %q", second)
	}
	if code, _ := s.identity(t, first); code != 401 {
		t.Errorf("old secret after regenerate: %d, want 401", code)
	}
	if code, _ := s.identity(t, second); code != 200 {
		t.Errorf("new secret after regenerate: %d, want 200", code)
	}

	do(t, ctx, "back to the list", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(heading("Access Tokens")),
		chromedp.Click(link("Delete ci deploy")), chromedp.WaitVisible(heading("Delete access token")))
	shot(t, ctx, "token-delete")
	do(t, ctx, "delete", chromedp.Click(button("Delete access token")), chromedp.WaitVisible(heading("Access Tokens")))
	if html := run(t, ctx, "list after delete", chromedp.OuterHTML(chromedp.CSS("main"))); !strings.Contains(html, "You have no access tokens.") {
		t.Errorf("the token is still listed:\n%s", html)
	}
	if code, _ := s.identity(t, second); code != 401 {
		t.Errorf("deleted token: %d, want 401", code)
	}

	// Sign out, then in again through the upstream OpenID Connect provider.
	do(t, ctx, "sign out", chromedp.Click(button("Sign out")), chromedp.WaitVisible(heading("Sign in")))
	if code := run(t, ctx, "signed out", chromedp.Evaluate[float64](`fetch("/tokens", {redirect: "manual"}).then(r => r.status)`, chromedp.EvalAwaitPromise)); code != 0 {
		t.Errorf("after sign-out /tokens answers %v, want a redirect to sign-in", code)
	}
	idp.signInAs(map[string]any{"sub": "u-7", "email": "dora@example.com", "email_verified": true})
	do(t, ctx, "sign in with the provider", chromedp.Click(button("Sign in with Test IdP")), chromedp.WaitVisible(heading("Access Tokens")))
	if who := run(t, ctx, "who", chromedp.Text(chromedp.CSS("header nav strong"))); who != "dora@example.com" {
		t.Errorf("signed in through the provider as %q", who)
	}
}

// TestKeyboardOnly: a person without a mouse reaches every control of the
// token form with Tab, each announced by its label, and creates a token
// with the keyboard alone (type the name, Enter submits); the secret is
// then shown, also reachable by Tab.
func TestKeyboardOnly(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	do(t, ctx, "open the sign-in link", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	// focused is the label (or accessible name) of the element with focus.
	const focused = `(() => { const e = document.activeElement; if (!e || e === document.body) return "";
		if (e.labels && e.labels.length) return e.labels[0].textContent.trim();
		return (e.getAttribute("aria-label") || e.textContent || "").trim(); })()`
	var seen []string
	for range 60 {
		do(t, ctx, "Tab", chromedp.KeyEvent("\t"))
		name := run(t, ctx, "focused control", chromedp.Evaluate[string](focused))
		if name == "" {
			t.Fatalf("Tab reached a control without a label or accessible name (after %q)", seen)
		}
		seen = append(seen, name)
		if name == "Token name" {
			break
		}
	}
	if len(seen) == 0 || seen[len(seen)-1] != "Token name" {
		t.Fatalf("Tab never reached the token name field; it went through %q", seen)
	}
	do(t, ctx, "type the name and press Enter", chromedp.KeyEvent("keyboard only"), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(byLabel("Your new access token")))
	tok := run(t, ctx, "read the secret", chromedp.Value(byLabel("Your new access token")))
	if secret.PrefixPAT.Parse(tok) != nil {
		t.Fatalf("the page showed %q, not a PAT", tok)
	}
	reached := false
	for range 60 {
		do(t, ctx, "Tab", chromedp.KeyEvent("\t"))
		if run(t, ctx, "focused control", chromedp.Evaluate[string](focused)) == "Your new access token" {
			reached = true
			break
		}
	}
	if !reached {
		t.Error("Tab never reached the new token's secret")
	}
}
