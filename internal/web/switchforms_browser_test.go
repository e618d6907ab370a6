package web_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opensts/sts/internal/storage"
)

// TestBrowserSwitchedPersonForms (docs/security.md A-107): a page opened
// for one person whose forms name no object of theirs, "Delete all access
// tokens" and an authorized application's "Revoke", acted for whoever
// was signed in to the browser when it was sent. admin opens the
// confirmation (it counts admin's tokens), grace signs in to the same
// browser meanwhile (another tab, the switch question answered), and
// admin's click deleted every one of grace's tokens; admin's Revoke on a
// /tokens page opened before the switch withdrew grace's consent. Both
// are refused now, nothing changed, and the page says why.
func TestBrowserSwitchedPersonForms(t *testing.T) {
	s := startServer(t)
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")
	pat := func(user, name string) string {
		return secretRE.FindString(s.sts(t, "pat", "create", "--user", user, "--expires-in", "30d", "--scope", "*", "--description", name))
	}
	mine, hers := pat("admin", "admin ci"), pat("grace", "grace ci")
	working := func(sec string) bool {
		code, _ := s.identity(t, sec)
		return code == http.StatusOK
	}
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", "http://127.0.0.1:1/cb", "--audience", s.URL, "--scope", "openid")
	client := regexp.MustCompile(`^(\S+)`).FindStringSubmatch(out)[1]
	st := s.store(t)
	now := storage.Now(time.Now())
	for _, name := range []string{"admin", "grace"} {
		if err := st.PutConsent(t.Context(), storage.Consent{PrincipalID: principalsNamed(t, s, name)[0], ClientID: client,
			Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	graceConsents := func() int {
		cs, err := st.ListConsents(t.Context(), principalsNamed(t, s, "grace")[0])
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	ctx := browser(t)
	// signsIn signs name in to the browser from its current page, as
	// another tab would, answering the switch question.
	signsIn := func(name string) {
		t.Helper()
		link := s.loginLink(t, name)
		code := link[strings.Index(link, "#")+1:]
		if got := run(t, ctx, name+" signs in meanwhile", chromedp.Evaluate[float64](
			`fetch("/login/link", {method: "POST", redirect: "manual", body: new URLSearchParams({token: `+strconv.Quote(code)+`, switch: "1"})}).then(r => r.type === "opaqueredirect" ? 303 : r.status)`,
			chromedp.EvalAwaitPromise)); got != http.StatusSeeOther {
			t.Fatalf("%s's sign-in: %v", name, got)
		}
	}

	says := func(what, text string) {
		t.Helper()
		if main := run(t, ctx, what, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(main, text) {
			t.Errorf("%s: the page does not say %q:\n%s", what, text, main)
		}
	}

	do(t, ctx, "admin opens delete all", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")),
		chromedp.Navigate(s.URL+"/tokens/delete-all"), chromedp.WaitVisible(heading("Delete all access tokens")))
	signsIn("grace")
	// answered is the heading of the page the click brings, not of the
	// page clicked on (marked old).
	const answered = `//body[not(@data-old)]//h1[normalize-space()='Access Tokens' or normalize-space()='Not done']`
	const old = `document.body.dataset.old = "1"`
	run(t, ctx, "mark the page", chromedp.Evaluate[string](old))
	do(t, ctx, "admin's delete all, sent as grace", chromedp.Click(button("Delete all access tokens")), chromedp.WaitVisible(answered))
	if !working(hers) {
		t.Error("admin's delete-all form deleted grace's token")
	}
	if !working(mine) {
		t.Error("admin's token was deleted, though admin was no longer signed in")
	}
	says("admin's delete all, sent as grace", "opened for another person")

	signsIn("admin")
	do(t, ctx, "admin opens the list", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(heading("Access Tokens")),
		chromedp.WaitVisible(button("Revoke")))
	signsIn("grace")
	run(t, ctx, "mark the page", chromedp.Evaluate[string](old))
	do(t, ctx, "admin's revoke, sent as grace", chromedp.Click(button("Revoke")), chromedp.WaitVisible(answered))
	if n := graceConsents(); n != 1 {
		t.Errorf("admin's revoke form withdrew grace's consent: she has %d, want 1", n)
	}
	says("admin's revoke, sent as grace", "opened for another person")

	// The person's own confirmation still deletes their tokens, and only
	// theirs.
	signsIn("admin")
	do(t, ctx, "admin deletes all", chromedp.Navigate(s.URL+"/tokens/delete-all"), chromedp.WaitVisible(heading("Delete all access tokens")),
		chromedp.Click(button("Delete all access tokens")), chromedp.WaitVisible(`//main[contains(., "You have no access tokens.")]`))
	if working(mine) || !working(hers) {
		t.Errorf("admin's own delete all: admin's token works %v (want false), grace's %v (want true)", working(mine), working(hers))
	}
}
