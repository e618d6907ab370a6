package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/storage"
)

// tokenFor signs p in and runs the authorization-code flow of the
// confidential client for scopes (consenting when asked).
func (e *codeEnv) tokenFor(t *testing.T, p storage.Principal, scopes ...string) *xoauth2.Token {
	t.Helper()
	e.signIn(t, p)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	conf.Scopes = scopes
	verifier, state := xoauth2.GenerateVerifier(), randText(t)
	resp, body := mustGet(t, e.browser, conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode == http.StatusOK {
		form := consentForm(t, body)
		form.Set("sts_consent_decision", "approve")
		resp, body = e.post(t, "/oauth2/authorize", form, nil)
	}
	tok, err := conf.Exchange(t.Context(), e.codeFrom(t, resp, body, state), xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	return tok
}

// idTokenFor is tokenFor with openid and email; it returns the ID token
// and the access token.
func (e *codeEnv) idTokenFor(t *testing.T, p storage.Principal) (string, string) {
	t.Helper()
	tok := e.tokenFor(t, p, "openid", "email")
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no ID token")
	}
	return raw, tok.AccessToken
}

// signedInAs is who the browser's cookie names, "" when none.
func (e *codeEnv) signedInAs() string {
	u, _ := url.Parse(e.base)
	for _, c := range e.jar.Cookies(u) {
		if c.Name == "test_principal" {
			return c.Value
		}
	}
	return ""
}

// TestEndSession is the judge of OpenID Connect RP-Initiated Logout 1.0 at
// /oauth2/logout (docs/security.md T-97): advertised in discovery (read
// with go-oidc); an ID token hint of the person signed in ends the session
// at once and returns to a registered address with state; a hint of
// someone else, or none, asks first, and the answer is bound to the
// request; every bad request is a page that neither redirects nor ends
// the session.
func TestEndSession(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	provider, err := oidc.NewProvider(t.Context(), e.base)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.EndSession != e.base+"/oauth2/logout" {
		t.Fatalf("end_session_endpoint = %q, %v", meta.EndSession, err)
	}
	otherHint, _ := e.idTokenFor(t, e.other)
	hint, access := e.idTokenFor(t, e.user) // leaves e.user signed in
	back := e.callback.URL + "/cb"
	logout := func(v url.Values) string { return e.base + "/oauth2/logout?" + v.Encode() }

	// Refusals: a page, no redirect, still signed in.
	broken := hint[:strings.LastIndexByte(hint, '.')] + ".AAAA"
	for _, tc := range []struct {
		name   string
		v      url.Values
		status int
	}{
		{"unregistered address", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/cb"}}, 400},
		{"a registered address with more path", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back + "/x"}}, 400},
		{"an address without a client", url.Values{"post_logout_redirect_uri": {back}}, 400},
		{"a client the hint was not issued to", url.Values{"id_token_hint": {hint}, "client_id": {e.public.ID}, "post_logout_redirect_uri": {back}}, 400},
		{"an unknown client", url.Values{"client_id": {"nope"}, "post_logout_redirect_uri": {back}}, 400},
		{"a hint with a broken signature", url.Values{"id_token_hint": {broken}, "post_logout_redirect_uri": {back}}, 400},
		{"an access token as the hint", url.Values{"id_token_hint": {access}}, 400},
		{"a hint of another server", url.Values{"id_token_hint": {"eyJhbGciOiJFUzI1NiIsImtpZCI6IngiLCJ0eXAiOiJKV1QifQ.e30.AAAA"}}, 400},
		{"a repeated parameter", url.Values{"id_token_hint": {hint}, "state": {"a", "b"}}, 400},
		// The state rule of /oauth2/authorize (docs/security.md T-133).
		{"a state with a tab", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"x\ty"}}, 400},
		{"a state with a line break", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"x\ny"}}, 400},
		{"a state with DEL", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"x\x7fy"}}, 400},
		{"a state not UTF-8", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"caf\xe9"}}, 400},
	} {
		resp, body := mustGet(t, e.browser, logout(tc.v))
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != "" || !strings.Contains(body, "cannot be completed") {
			t.Errorf("%s: %d Location %q, want a %d page", tc.name, resp.StatusCode, resp.Header.Get("Location"), tc.status)
		}
		if e.signedInAs() != e.user.ID {
			t.Fatalf("%s: the session ended", tc.name)
		}
	}

	// A hint of someone else: asked first. The form is bound to the
	// request, same-origin only.
	resp, page := mustGet(t, e.browser, logout(url.Values{"id_token_hint": {otherHint}, "post_logout_redirect_uri": {back}, "state": {"s1"}}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign out of sts?") || e.signedInAs() != e.user.ID {
		t.Fatalf("hint of another person: %d %q, want the question and the session kept", resp.StatusCode, page)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != questionCSP+" "+e.callback.URL {
		t.Errorf("the question's Content-Security-Policy = %q, want %q and the address's origin", got, questionCSP)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	tampered := url.Values{}
	for k, v := range form {
		tampered[k] = v
	}
	tampered.Set("state", "s2")
	if resp, _ := e.post(t, "/oauth2/logout", tampered, nil); resp.StatusCode != http.StatusBadRequest || e.signedInAs() != e.user.ID {
		t.Fatalf("confirmation of another request = %d, want 400 and the session kept", resp.StatusCode)
	}
	// A relying party's own field named like a form field of ours,
	// posted from its site: the request, asked as any (RFC 6749 §3.1:
	// unknown parameters are ignored), never taken for the answer
	// (docs/security.md T-97).
	rp := url.Values{"id_token_hint": {otherHint}, "post_logout_redirect_uri": {back}, "confirm": {"rp-own-value"}}
	if resp, page := e.post(t, "/oauth2/logout", rp, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://rp.example"}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, "Sign out of sts?") || e.signedInAs() != e.user.ID {
		t.Fatalf("cross-site request carrying the relying party's own confirm field = %d %.120q, want the question and the session kept", resp.StatusCode, page)
	}
	if resp, _ := e.post(t, "/oauth2/logout", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden || e.signedInAs() != e.user.ID {
		t.Fatalf("cross-site confirmation = %d, want 403 and the session kept", resp.StatusCode)
	}
	resp, _ = e.post(t, "/oauth2/logout", form, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != back+"?state=s1" || e.signedInAs() != "" {
		t.Fatalf("confirmed: %d to %q signed in as %q, want 303 to %s?state=s1 and signed out", resp.StatusCode, loc, e.signedInAs(), back)
	}

	// The hint of the person signed in: at once, back with state, and
	// the registered address keeps its own query.
	e.signIn(t, e.user)
	resp, _ = mustGet(t, e.browser, logout(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {e.cbAlt}, "state": {"s 3"}}))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != e.cbAlt+"?state=s+3" || e.signedInAs() != "" {
		t.Fatalf("hint of the person signed in: %d to %q signed in as %q", resp.StatusCode, loc, e.signedInAs())
	}
	// Nobody signed in, no address: the page says so.
	resp, page = mustGet(t, e.browser, logout(url.Values{}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "You are signed out") {
		t.Fatalf("signed out, no address: %d %q", resp.StatusCode, page)
	}
	// A bearer credential is no browser session and no answer: ignored.
	e.signIn(t, e.user)
	req, _ := http.NewRequest(http.MethodGet, logout(url.Values{"post_logout_redirect_uri": {back}, "client_id": {e.conf.ID}}), nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err = e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || e.signedInAs() != e.user.ID {
		t.Fatalf("with a bearer access token: %d, want the question and the session kept", resp.StatusCode)
	}
	// A relying party's cross-site POST arrives without the session
	// cookie: asked first, never ended or redirected blindly.
	e.signIn(t, e.user)
	resp, page = e.post(t, "/oauth2/logout", url.Values{"client_id": {e.conf.ID}, "post_logout_redirect_uri": {back}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign out of sts?") || e.signedInAs() != e.user.ID {
		t.Fatalf("cross-site POST: %d %q", resp.StatusCode, page)
	}
	// Without an address to return to, the question's form may post only
	// to us: its policy names no other source.
	resp, page = mustGet(t, e.browser, logout(url.Values{}))
	if got := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign out of sts?") || got != questionCSP {
		t.Errorf("the question without an address: %d, Content-Security-Policy %q, want %q", resp.StatusCode, got, questionCSP)
	}
}

// questionCSP is the end-session question's Content-Security-Policy
// before the origin of the address it may return to (docs/security.md
// T-97).
const questionCSP = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
