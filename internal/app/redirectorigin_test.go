package app_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestNoRedirectWithoutSignIn: whoever can register a client cannot make
// this origin bounce a browser to the client's address: with nobody
// signed in, an authorization request the server refuses sends the person
// to sign in first (RFC 9700 §4.11.1), and a logout shows the signed-out
// page instead of returning to the client (docs/security.md T-103).
// Silent authentication (prompt=none) still answers at the client's
// address, as OIDC requires.
func TestNoRedirectWithoutSignIn(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	back := e.callback.URL + "/cb"
	get := func(path string, v url.Values) (*http.Response, string) {
		t.Helper()
		return mustGet(t, anon, e.base+path+"?"+v.Encode())
	}
	request := func(edit func(url.Values)) url.Values {
		v := url.Values{"client_id": {e.conf.ID}, "redirect_uri": {back}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		edit(v)
		return v
	}
	for name, edit := range map[string]func(url.Values){
		"an implicit-flow request": func(v url.Values) { v.Set("response_type", "token") },
		"no PKCE challenge":        func(v url.Values) { v.Del("code_challenge") },
		"an unknown scope":         func(v url.Values) { v.Set("scope", "openid nonsense") },
	} {
		resp, _ := get("/oauth2/authorize", request(edit))
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, e.callback.URL) || loc == "" {
			t.Errorf("%s, nobody signed in: %d to %q, want the sign-in page first", name, resp.StatusCode, loc)
		}
	}
	resp, _ := get("/oauth2/authorize", request(func(v url.Values) { v.Set("response_type", "token"); v.Set("prompt", "none") }))
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, back+"?") {
		t.Errorf("prompt=none with an error, nobody signed in: %d to %q, want the answer at the client's address", resp.StatusCode, loc)
	}

	hint, _ := e.idTokenFor(t, e.user) // an ID token the client holds; anon has no session
	for name, v := range map[string]url.Values{
		"with its client":         {"client_id": {e.conf.ID}, "post_logout_redirect_uri": {back}, "state": {"s"}},
		"with the client's token": {"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"s"}},
	} {
		resp, page := get("/oauth2/logout", v)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(page, "You are signed out") {
			t.Errorf("logout %s, nobody signed in: %d to %q, want the signed-out page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// Sent by POST, as a relying party's form would, the request carries
	// no session cookie (SameSite=Lax), so sts asks. The answer, from
	// our own page in a browser where nobody is signed in, ends nothing:
	// it must not return to the client either, or one click on "Sign out"
	// is the redirector above.
	post := func(form url.Values, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/logout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := anon.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := post(url.Values{"client_id": {e.conf.ID}, "post_logout_redirect_uri": {back}, "state": {"s"}},
		map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://rp.example"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign out of sts?") {
		t.Fatalf("logout sent by POST, nobody signed in: %d, want the question\n%s", resp.StatusCode, page)
	}
	answer := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		answer.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	resp, page = post(answer, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.base})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(page, "You are signed out") {
		t.Errorf("the question answered, nobody signed in: %d to %q, want the signed-out page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestResponseModeQueryOnly: the code is only ever delivered in the
// query, so a request for another response_mode (fragment, form_post,
// anything else) is refused rather than answered in the query the
// client did not ask for; query, or none, is served.
func TestResponseModeQueryOnly(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	e.signIn(t, e.user)
	back := e.callback.URL + "/cb"
	for _, mode := range []string{"fragment", "form_post", "bogus", "query", ""} {
		v := url.Values{"client_id": {e.conf.ID}, "redirect_uri": {back}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		if mode != "" {
			v.Set("response_mode", mode)
		}
		resp, _ := mustGet(t, e.browser, e.base+"/oauth2/authorize?"+v.Encode())
		loc, _ := url.Parse(resp.Header.Get("Location"))
		refused := loc != nil && loc.Query().Get("error") == "invalid_request" && strings.HasPrefix(loc.String(), back)
		if want := mode != "" && mode != "query"; refused != want {
			t.Errorf("response_mode %q: %d to %q; want refused = %v", mode, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if loc != nil && loc.Query().Get("code") != "" {
			t.Errorf("response_mode %q: a code in the query", mode)
		}
	}
}
