package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/web"
)

// startFormRE finds the anti-CSRF value of the sign-in page's provider
// forms.
var startFormRE = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]+)">`)

// signInWith starts a sign-in through provider id the way a person does:
// open the sign-in page in browser b, then send its form for that
// provider. b follows the redirects through the provider and back.
func signInWith(t *testing.T, b *http.Client, s *server, id, returnTo string) reply {
	t.Helper()
	return signInFrom(t, b, s, id, "/login?return_to="+url.QueryEscape(returnTo))
}

// signInFrom is signInWith from the sign-in page at loginPath (a link of
// another page): the provider's form is sent with every hidden field the
// page gave it.
func signInFrom(t *testing.T, b *http.Client, s *server, id, loginPath string) reply {
	t.Helper()
	page := get(t, b, s.URL+loginPath)
	if !strings.Contains(page.body, `action="/login/oidc/`+id+`"`) {
		t.Fatalf("the sign-in page has no form for provider %q:\n%s", id, page.body)
	}
	if startFormRE.FindStringSubmatch(page.body) == nil {
		t.Fatalf("the sign-in page carries no anti-CSRF value:\n%s", page.body)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	return (&person{c: b, s: s}).do(t, http.MethodPost, "/login/oidc/"+id, form, nil)
}

// TestOIDCStartOnlyFromTheSignInPage: a sign-in through an upstream
// provider starts only from our sign-in page's form (docs/security.md
// T-137). A link or image of another site (GET /login/oidc/{id}) used to
// send the browser to the provider, which approves silently a person
// signed in there, and the callback then replaced the session the browser
// had: Ada, signed in, became Mallory without a click. Now such a GET
// leads to the sign-in page and changes nothing, and a POST without the
// page's anti-CSRF value, with another browser's, or from another site is
// refused before the provider is asked.
func TestOIDCStartOnlyFromTheSignInPage(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "evil", "email": "mallory@example.com", "email_verified": true})

	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	ada.c.CheckRedirect = nil // follow redirects, as a browser does, through the provider too

	r := ada.do(t, http.MethodGet, "/login/oidc/test?return_to=%2Ftokens", nil, nil)
	if who := signedInAs(t, ada); who != "admin" {
		t.Fatalf("a cross-site GET of the sign-in start signed Ada's browser in as %q", who)
	}
	if r.status != http.StatusOK || !strings.Contains(r.body, "<h1>Sign in</h1>") {
		t.Errorf("GET of the sign-in start: %d, want the sign-in page\n%s", r.status, r.body)
	}
	if p.Seen != nil {
		t.Errorf("the provider was asked: %v", p.Seen)
	}

	// The sign-in page's own value, read by Ada's browser.
	ada.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	page := ada.do(t, http.MethodGet, "/login", nil, nil)
	m := startFormRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("the sign-in page carries no anti-CSRF value:\n%s", page.body)
	}
	// Its forms are answered with a redirect to the provider, which
	// form-action 'self' would stop; scripts stay our own.
	if csp := page.header.Get("Content-Security-Policy"); csp != strings.Replace(web.ContentSecurityPolicy, " form-action 'self';", "", 1) {
		t.Errorf("the sign-in page's CSP: %q", csp)
	}
	other := newPerson(t, s)
	theirs := startFormRE.FindStringSubmatch(other.do(t, http.MethodGet, "/login", nil, nil).body)
	if theirs == nil || theirs[1] == m[1] {
		t.Fatalf("two browsers got the same anti-CSRF value (or none): %q", theirs)
	}
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no value", url.Values{"return_to": {"/tokens"}}, nil},
		{"empty value", url.Values{"csrf": {""}}, nil},
		{"another browser's value", url.Values{"csrf": {theirs[1]}}, nil},
		{"from another site", url.Values{"csrf": {m[1]}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"from another origin", url.Values{"csrf": {m[1]}}, map[string]string{"Origin": "http://localhost:1"}},
	} {
		r := ada.do(t, http.MethodPost, "/login/oidc/test", tc.form, tc.hdr)
		started := strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "sts_login=")
		if r.status != http.StatusForbidden || started {
			t.Errorf("%s: %d, sign-in started %v; want 403 and none started", tc.name, r.status, started)
		}
	}
	if p.Seen != nil {
		t.Errorf("the provider was asked: %v", p.Seen)
	}
	if who := signedInAs(t, ada); who != "admin" {
		t.Fatalf("after the refused starts, signed in as %q", who)
	}

	// The page's own form, sent by Ada: she asked, so she switches.
	ada.c.CheckRedirect = nil
	r = ada.do(t, http.MethodPost, "/login/oidc/test", url.Values{"csrf": {m[1]}, "return_to": {"/tokens"}}, nil)
	if who := signedInAs(t, ada); r.status != http.StatusOK || who != "mallory@example.com" {
		t.Errorf("the sign-in page's form: %d, signed in as %q, want mallory@example.com", r.status, who)
	}
}
