package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEndSessionUnknownParameterRepeated: /oauth2/logout ignores a
// parameter it does not know, sent once or more, as /oauth2/authorize
// does (RFC 6749 §3.1; docs/security.md T-223, T-224). A relying party's
// own list (extra=a&extra=b, a framework's x[]=1&x[]=2) was a 400 page
// "The request repeats …": the person stayed signed in and never came
// back. A parameter of RP-Initiated Logout 1.0 §2, or our own answer
// field, repeated is refused as before, a page that ends nothing.
func TestEndSessionUnknownParameterRepeated(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	hint, _ := e.idTokenFor(t, e.user) // leaves e.user signed in
	back := e.callback.URL + "/cb"
	base := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"s1"}}
	with := func(k string, vs ...string) string {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		v[k] = append(v[k], vs...)
		return e.base + "/oauth2/logout?" + v.Encode()
	}
	for _, name := range []string{"id_token_hint", "post_logout_redirect_uri", "state", "client_id", "logout_hint", "ui_locales", "sts_logout_confirm"} {
		resp, body := mustGet(t, e.browser, with(name, "a", "b"))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "repeats") || e.signedInAs() != e.user.ID {
			t.Errorf("%s repeated: %d Location %q signed in as %q, want a 400 page and the session kept", name, resp.StatusCode, resp.Header.Get("Location"), e.signedInAs())
		}
	}
	resp, _ := mustGet(t, e.browser, with("extra", "foobar", "again")+"&x%5B%5D=1&x%5B%5D=2")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != back+"?state=s1" || e.signedInAs() != "" {
		t.Fatalf("unknown parameters repeated: %d to %q signed in as %q, want 303 to %s?state=s1 and signed out", resp.StatusCode, loc, e.signedInAs(), back)
	}
	// By POST, as a relying party's page sends it with its framework's
	// fields: the question, which carries none of them.
	e.signIn(t, e.user)
	form := url.Values{"client_id": {e.conf.ID}, "post_logout_redirect_uri": {back}, "csrf": {"a", "b"}}
	resp, page := e.post(t, "/oauth2/logout", form, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign out of sts?") || strings.Contains(page, `name="csrf"`) || e.signedInAs() != e.user.ID {
		t.Fatalf("cross-site POST with a repeated field of its own: %d %.200q, want the question and the session kept", resp.StatusCode, page)
	}
}
