package web_test

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// otherSite is a page of another site: http://localhost:PORT, cross-site
// to the server at 127.0.0.1. Whoever opens it is sent on to the link it
// holds, as a page of Mallory's would send them to a sign-in link of
// hers.
type otherSite struct {
	URL  string
	mu   sync.Mutex
	link string
}

func newOtherSite(t *testing.T) *otherSite {
	t.Helper()
	o := &otherSite{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" { // the browser also asks for /favicon.ico
			http.NotFound(w, r)
			return
		}
		o.mu.Lock()
		link := o.link
		o.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Cats</title><meta http-equiv="refresh" content="0;url=%s"><p>Cat pictures</p>`, html.EscapeString(link))
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	o.URL = "http://localhost:" + port + "/"
	return o
}

func (o *otherSite) plant(link string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.link = link
}

// TestBrowserLinkLoginCSRF: a one-time sign-in link for Mallory's own
// account, put on another site, signs nobody in as Mallory
// (docs/security.md T-105). Opened from that site, the link page fills in
// the code but waits for a click and says why, both in a browser nobody is
// signed in to and in one where Ada is signed in (who stays signed in). A
// link opened from outside any site (a terminal, a mail program) into a
// browser where someone else is signed in asks first, naming both people,
// and switches only on a click. The usual case, a link opened into a
// browser nobody is signed in to, still signs in at once.
func TestBrowserLinkLoginCSRF(t *testing.T) {
	s := startServer(t)
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "mallory")
	other := newOtherSite(t)
	ctx := browser(t)
	// planted is Mallory's fresh link, returning to /tokens.
	planted := func() string {
		return strings.Replace(s.loginLink(t, "mallory"), "/login/link#", "/login/link?return_to=%2Ftokens#", 1)
	}
	// landed waits for the page a link leads to, whichever it is: the
	// signed-in page, the question whether to switch, or the link page
	// waiting for a click once app.js has filled in the code.
	landed := func(what string) string {
		t.Helper()
		do(t, ctx, what, chromedp.WaitVisible(`//h1[normalize-space()='Access Tokens' or normalize-space()='Switch account'] | //*[@id='link-warning']`))
		if h := run(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))); h != "Sign in with a link" {
			return h
		}
		run(t, ctx, "app.js filled in the code", chromedp.Poll[bool](`document.readyState === "complete" && document.getElementById("link-token").value !== ""`))
		if loc := run(t, ctx, "location", chromedp.Location()); strings.Contains(loc, "#") {
			t.Errorf("%s: the code stays in the address bar: %s", what, loc)
		}
		return "Sign in with a link"
	}
	// signedInAs is who /tokens shows as signed in, "" when it asks to
	// sign in.
	signedInAs := func() string {
		t.Helper()
		do(t, ctx, "open /tokens", chromedp.Navigate(s.URL+"/tokens"), chromedp.WaitVisible(`//h1[normalize-space()='Access Tokens' or normalize-space()='Sign in']`))
		if run(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))) == "Sign in" {
			return ""
		}
		return run(t, ctx, "who", chromedp.Text(chromedp.CSS("header nav strong")))
	}

	// Nobody signed in: the link from another site waits for a click.
	other.plant(planted())
	do(t, ctx, "open the other site", chromedp.Navigate(other.URL))
	if got := landed("the planted link, signed out"); got != "Sign in with a link" {
		t.Fatalf("a link opened from another site led to %q without a click", got)
	}
	if warning := run(t, ctx, "warning", chromedp.Text(chromedp.CSS("#link-warning"))); !strings.Contains(warning, "another site") {
		t.Errorf("the link page does not say why it waits: %q", warning)
	}
	if who := signedInAs(); who != "" {
		t.Fatalf("a link opened from another site signed the browser in as %q", who)
	}

	// The usual case: one step.
	do(t, ctx, "open Ada's link", chromedp.Navigate(s.loginLink(t, "admin")))
	if got := landed("Ada's link"); got != "Access Tokens" {
		t.Fatalf("a link opened into a signed-out browser led to %q, want the tokens page at once", got)
	}
	if who := signedInAs(); who != "admin" {
		t.Fatalf("signed in as %q, want admin", who)
	}

	// Ada signed in: the link from another site waits, Ada stays.
	other.plant(planted())
	do(t, ctx, "open the other site", chromedp.Navigate(other.URL))
	if got := landed("the planted link, Ada signed in"); got != "Sign in with a link" {
		t.Fatalf("a link opened from another site led to %q without a click", got)
	}
	if who := signedInAs(); who != "admin" {
		t.Fatalf("after the other site, signed in as %q, want admin", who)
	}

	// Ada signed in, Mallory's link opened from outside any site: asked
	// first, naming both; "stay" keeps Ada, a click on "Sign in as
	// mallory" switches.
	for _, stay := range []bool{true, false} {
		do(t, ctx, "open Mallory's link", chromedp.Navigate(planted()))
		if got := landed("Mallory's link, Ada signed in"); got != "Switch account" {
			t.Fatalf("Mallory's link in Ada's browser led to %q, want the question", got)
		}
		q := run(t, ctx, "question", chromedp.Text(chromedp.CSS("main")))
		if !strings.Contains(q, "You are signed in as admin") || !strings.Contains(q, "mallory") {
			t.Errorf("the question does not name both people: %q", q)
		}
		if stay {
			do(t, ctx, "stay", chromedp.Click(link("Stay signed in as admin")), chromedp.WaitVisible(heading("Access Tokens")))
			if who := signedInAs(); who != "admin" {
				t.Fatalf("after staying, signed in as %q, want admin", who)
			}
			continue
		}
		do(t, ctx, "switch", chromedp.Click(button("Sign in as mallory")), chromedp.WaitVisible(heading("Access Tokens")))
		if who := signedInAs(); who != "mallory" {
			t.Fatalf("after switching, signed in as %q, want mallory", who)
		}
	}
}
