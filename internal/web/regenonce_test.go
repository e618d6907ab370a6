package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

var replacesRE = regexp.MustCompile(`name="replaces" value="([^"]+)"`)

// TestRegenerateFormWorksOnce (docs/security.md T-164): without
// JavaScript the regenerate form is a plain POST, and its answer (the new
// secret) is the page at /tokens/{id}/regenerate; a reload, or Back and
// Forward, asks the browser to send the form again, and sending it
// regenerated again: the secret the person had just copied stopped
// working and another was shown. Two tabs open on the token did the same.
// The form names the secret it replaces; once that secret is replaced,
// the same form is refused and the secret shown first keeps working.
func TestRegenerateFormWorksOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	ada.createPAT(t, "ci", "full")
	id := patIDRE.FindStringSubmatch(ada.do(t, http.MethodGet, "/tokens", nil, nil).body)[1]
	page := ada.do(t, http.MethodGet, "/tokens/"+id, nil, nil)
	m := replacesRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("the regenerate form names no secret it replaces:\n%s", page.body)
	}
	form := url.Values{"expires": {"30"}, "replaces": {html.UnescapeString(m[1])}}
	first := ada.do(t, http.MethodPost, "/tokens/"+id+"/regenerate", form, nil)
	sec := secretRE.FindString(first.body)
	if first.status != http.StatusOK || sec == "" {
		t.Fatalf("regenerate: %d\n%s", first.status, first.body)
	}
	again := ada.do(t, http.MethodPost, "/tokens/"+id+"/regenerate", form, nil)
	if again.status != http.StatusConflict || secretRE.MatchString(again.body) {
		t.Errorf("the same form sent again: %d, secret shown %v; want 409 and no secret\n%s", again.status, secretRE.MatchString(again.body), again.body)
	}
	if code, _ := s.identity(t, sec); code != http.StatusOK {
		t.Errorf("the secret shown first, after the form was sent again: %d, want 200", code)
	}
	// The page shown with the new secret carries a form for it: that one works.
	if m := replacesRE.FindStringSubmatch(first.body); m == nil {
		t.Error("the page with the new secret has no regenerate form naming it")
	} else if r := ada.do(t, http.MethodPost, "/tokens/"+id+"/regenerate", url.Values{"expires": {"30"}, "replaces": {html.UnescapeString(m[1])}}, nil); r.status != http.StatusOK {
		t.Errorf("the new page's form: %d, want 200", r.status)
	}
}

// TestBrowserNoScriptRegenerateReload (docs/security.md T-164): chromium
// without JavaScript regenerates a token, then reloads the answer, which
// sends the form again: the page refuses it, and the secret shown first
// still works.
func TestBrowserNoScriptRegenerateReload(t *testing.T) {
	s := startServer(t)
	ctx := browser(t, chromedp.Flag("blink-settings", "scriptEnabled=false"))
	_, code, _ := strings.Cut(s.loginLink(t, "admin"), "#")
	// No script reads the fragment: the person pastes the code.
	do(t, ctx, "sign in", chromedp.Navigate(s.URL+"/login/link"), chromedp.SendKeys(byLabel("Sign-in code"), code),
		chromedp.Click(button("Sign in")), chromedp.WaitVisible(heading("Access Tokens")))
	do(t, ctx, "create", chromedp.SendKeys(byLabel("Token name"), "no script"), chromedp.Click(byLabel("Full Access")),
		chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	do(t, ctx, "open it", chromedp.Click(link("Edit no script")), chromedp.WaitVisible(heading("Edit access token")),
		chromedp.Click(button("Regenerate token")), chromedp.WaitVisible(byLabel("Your new access token")))
	first := run(t, ctx, "read the secret", chromedp.Value(byLabel("Your new access token")))
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(heading("Already regenerated")))
	if html := run(t, ctx, "page after reload", chromedp.OuterHTML(chromedp.CSS("html"))); secretRE.MatchString(html) {
		t.Error("the reload showed a secret")
	}
	if code, _ := s.identity(t, first); code != http.StatusOK {
		t.Errorf("the secret shown first, after the reload: %d, want 200", code)
	}
}
