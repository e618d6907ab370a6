package web_test

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserOIDCStartLoginCSRF: another site cannot start a sign-in
// through an upstream provider in someone's browser (docs/security.md
// T-137). Ada is signed in; the provider approves at once whoever is
// signed in there (Mallory). A page of another site that sends the
// browser to /login/oidc/test used to sign Ada's browser in as Mallory
// without a click; now it shows the sign-in page and Ada stays. A page of
// another site that posts a form there is refused. Ada's own click on the
// sign-in page's button still signs in through the provider.
func TestBrowserOIDCStartLoginCSRF(t *testing.T) {
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "email", "default"))
	idp.signInAs(map[string]any{"sub": "evil", "email": "mallory@example.com", "email_verified": true})
	ctx := browser(t)
	signedInAs := func() string {
		t.Helper()
		do(t, ctx, "open /tokens", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(`//h1[normalize-space()='Access Tokens' or normalize-space()='Sign in']`))
		if run(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))) == "Sign in" {
			return ""
		}
		return run(t, ctx, "who", chromedp.Text(chromedp.CSS("header nav strong")))
	}
	do(t, ctx, "Ada signs in", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))

	// A page of another site sends the browser to the start (a link, an
	// image or a redirect: a GET).
	other := newOtherSite(t)
	other.plant(s.URL + "/login/oidc/test?return_to=%2Ftokens")
	do(t, ctx, "open the other site (GET)", chromedp.Navigate(other.URL), chromedp.WaitVisible(`//h1`))
	if who := signedInAs(); who != "admin" {
		t.Fatalf("a page of another site signed Ada's browser in as %q", who)
	}

	// A page of another site posts a form to the start.
	poster := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Cats</title><form method="post" action="%s"><input type="hidden" name="csrf" value="guess">`+
			`<input type="hidden" name="return_to" value="/tokens"></form><script>document.forms[0].submit()</script>`,
			html.EscapeString(s.URL+"/login/oidc/test"))
	}))
	t.Cleanup(poster.Close)
	_, port, _ := net.SplitHostPort(poster.Listener.Addr().String())
	do(t, ctx, "open the other site (POST)", chromedp.Navigate("http://localhost:"+port+"/"))
	run(t, ctx, "the form is posted", chromedp.Poll[bool](`location.href.endsWith("/login/oidc/test") && document.readyState === "complete"`))
	status := int64(run(t, ctx, "status", chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].responseStatus`)))
	if status != http.StatusForbidden {
		t.Errorf("a form of another site posted to the start: %d, want 403", status)
	}
	if who := signedInAs(); who != "admin" {
		t.Fatalf("a form of another site signed Ada's browser in as %q", who)
	}

	// Ada's own click: she asked, so she signs in through the provider.
	do(t, ctx, "sign in with the provider", chromedp.Navigate(s.URL+"/login"),
		chromedp.Click(button("Sign in with Test IdP")), chromedp.WaitVisible(heading("Access Tokens")))
	if who := signedInAs(); who != "mallory@example.com" {
		t.Fatalf("after Ada's click, signed in as %q, want mallory@example.com", who)
	}
}
