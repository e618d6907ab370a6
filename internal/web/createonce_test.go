package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

var onceRE = regexp.MustCompile(`name="once" value="([^"]+)"`)

// createForm is the new-token form of the /tokens page p is shown, filled
// in, with the one-time value the page put in it.
func createForm(t *testing.T, p *person, name string) url.Values {
	t.Helper()
	page := p.do(t, http.MethodGet, "/tokens", nil, nil)
	m := onceRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("the new-token form carries no one-time value:\n%s", page.body)
	}
	return url.Values{"name": {name}, "permission": {"full"}, "expires": {"30"}, "once": {html.UnescapeString(m[1])}}
}

// TestCreateFormWorksOnce (docs/security.md T-165): without JavaScript
// the new-token form is a plain POST whose answer shows the secret; a
// reload, Back and Forward, or a second click sends it again, and each
// made another token and showed another secret. One form creates at most
// one token: the same form again is 409 "Already created", with no secret
// and no new token, even when both arrive at once.
func TestCreateFormWorksOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	form := createForm(t, ada, "once")
	firstOnce := form.Get("once")
	first := ada.do(t, http.MethodPost, "/tokens", form, nil)
	sec := secretRE.FindString(first.body)
	if first.status != http.StatusOK || sec == "" {
		t.Fatalf("create: %d\n%s", first.status, first.body)
	}
	again := ada.do(t, http.MethodPost, "/tokens", form, nil)
	if again.status != http.StatusConflict || secretRE.MatchString(again.body) || !strings.Contains(again.body, "Already created") {
		t.Errorf("the same form sent again: %d, secret shown %v; want 409 Already created and no secret\n%s", again.status, secretRE.MatchString(again.body), again.body)
	}
	if n := len(patIDRE.FindAllString(ada.do(t, http.MethodGet, "/tokens", nil, nil).body, -1)); n != 1 {
		t.Errorf("tokens after the form was sent twice: %d, want 1", n)
	}
	if code, _ := s.identity(t, sec); code != http.StatusOK {
		t.Errorf("the secret shown first: %d, want 200", code)
	}

	// A double click: the same form twice at once makes one token.
	form = createForm(t, ada, "twice")
	var wg sync.WaitGroup
	replies := make([]reply, 2)
	for i := range replies {
		wg.Go(func() { replies[i] = ada.do(t, http.MethodPost, "/tokens", form, nil) })
	}
	wg.Wait()
	shown := 0
	for _, r := range replies {
		if secretRE.MatchString(r.body) {
			shown++
		} else if r.status != http.StatusConflict {
			t.Errorf("the form sent twice at once: %d\n%s", r.status, r.body)
		}
	}
	if shown != 1 {
		t.Errorf("the form sent twice at once showed %d secrets, want 1", shown)
	}
	if n := len(patIDRE.FindAllString(ada.do(t, http.MethodGet, "/tokens", nil, nil).body, -1)); n != 2 {
		t.Errorf("tokens after the second form was sent twice at once: %d, want 2", n)
	}

	// Another person's form value is not this person's: refused, nothing made.
	s.sts(t, "principal", "create", "--org", "default", "--name", "bob")
	bob := newPerson(t, s)
	bob.signIn(t, "bob", "")
	theirs := createForm(t, bob, "theirs")
	theirs.Set("once", form.Get("once"))
	if r := bob.do(t, http.MethodPost, "/tokens", theirs, nil); r.status != http.StatusBadRequest || secretRE.MatchString(r.body) {
		t.Errorf("a form value made for another person: %d, secret shown %v; want 400 and none", r.status, secretRE.MatchString(r.body))
	}
	// Each page's form is new: the page after a refusal, and the one
	// showing a secret, carry a value that creates.
	theirs.Set("once", html.UnescapeString(onceRE.FindStringSubmatch(first.body)[1]))
	if theirs.Get("once") == firstOnce {
		t.Error("the page showing the secret carries the form value just used")
	}
	if r := ada.do(t, http.MethodPost, "/tokens", theirs, nil); r.status != http.StatusOK || !secretRE.MatchString(r.body) {
		t.Errorf("the form on the page showing the secret: %d, want 200 and a secret", r.status)
	}
}

// TestBrowserNoScriptCreateReload (docs/security.md T-165): chromium
// without JavaScript creates a token, then reloads the answer, which sends
// the form again: the page says it is already created, shows no secret,
// and the list holds one token.
func TestBrowserNoScriptCreateReload(t *testing.T) {
	s := startServer(t)
	ctx := browser(t, chromedp.Flag("blink-settings", "scriptEnabled=false"))
	_, code, _ := strings.Cut(s.loginLink(t, "admin"), "#")
	do(t, ctx, "sign in", chromedp.Navigate(s.URL+"/login/link"), chromedp.SendKeys(byLabel("Sign-in code"), code),
		chromedp.Click(button("Sign in")), chromedp.WaitVisible(heading("Access Tokens")))
	do(t, ctx, "create", chromedp.SendKeys(byLabel("Token name"), "no script"), chromedp.Click(byLabel("Full Access")),
		chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	first := run(t, ctx, "read the secret", chromedp.Value(byLabel("Your new access token")))
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(heading("Already created")))
	if page := run(t, ctx, "page after reload", chromedp.OuterHTML(chromedp.CSS("html"))); secretRE.MatchString(page) {
		t.Error("the reload showed a secret")
	}
	do(t, ctx, "back to the list", chromedp.Click(link("Back to access tokens")), chromedp.WaitVisible(heading("Access Tokens")))
	if page := run(t, ctx, "the list", chromedp.OuterHTML(chromedp.CSS("html"))); len(patIDRE.FindAllString(page, -1)) != 1 {
		t.Errorf("tokens after the reload: %d, want 1", len(patIDRE.FindAllString(page, -1)))
	}
	if code, _ := s.identity(t, first); code != http.StatusOK {
		t.Errorf("the secret shown first, after the reload: %d, want 200", code)
	}
}
