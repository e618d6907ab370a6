package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

// TestAuthorizationCodeIDTokenHint: an authorization request's
// id_token_hint names the person it is for (OIDC Core §3.1.2.1). A
// silent renewal (prompt=none) with the ID token of one person, in a
// browser where another is signed in now, is login_required, never a
// code for whoever happens to be signed in; a hint of the person signed
// in gets its code; a hint we did not issue is invalid_request; and the
// hint survives the trip through sign-in (docs/security.md T-109).
func TestAuthorizationCodeIDTokenHint(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	adaHint, adaAccess := e.idTokenFor(t, e.user)
	bobHint, _ := e.idTokenFor(t, e.other) // Bob consents and is the one signed in now

	ask := func(t *testing.T, hint, prompt string) (*http.Response, url.Values, string) {
		t.Helper()
		verifier, state := xoauth2.GenerateVerifier(), randText(t)
		opts := []xoauth2.AuthCodeOption{xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("id_token_hint", hint)}
		if prompt != "" {
			opts = append(opts, xoauth2.SetAuthURLParam("prompt", prompt))
		}
		resp, _ := mustGet(t, e.browser, conf.AuthCodeURL(state, opts...))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		q := loc.Query()
		if resp.StatusCode == http.StatusFound && strings.HasPrefix(loc.String(), e.callback.URL) &&
			(q.Get("state") != state || q.Get("iss") != e.base) {
			t.Errorf("callback query %v lacks state %q or iss", q, state)
		}
		return resp, q, verifier
	}

	for _, prompt := range []string{"none", ""} {
		resp, q, _ := ask(t, adaHint, prompt)
		if q.Get("error") != "login_required" || q.Has("code") {
			t.Errorf("prompt %q, Ada's hint, Bob signed in: %d %v, want login_required and no code", prompt, resp.StatusCode, q)
		}
	}
	// The hint of the person signed in: the silent renewal works.
	_, q, verifier := ask(t, bobHint, "none")
	if q.Get("code") == "" {
		t.Fatalf("Bob's own hint: %v, want a code", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil || idt.Subject != e.other.ID {
		t.Fatalf("ID token %v, %v, want Bob's", idt, err)
	}
	// The hint rides along the consent screen: approving it works.
	resp, _, _ := ask(t, bobHint, "consent")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("prompt=consent with Bob's hint: %d, want the consent screen", resp.StatusCode)
	}
	state := randText(t)
	_, page := mustGet(t, e.browser, conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier),
		xoauth2.SetAuthURLParam("id_token_hint", bobHint), xoauth2.SetAuthURLParam("prompt", "consent")))
	form := consentForm(t, page)
	form.Set("sts_consent_decision", "approve")
	resp, body := e.post(t, "/oauth2/authorize", form, nil)
	e.codeFrom(t, resp, body, state)
	// Not an ID token of ours: garbage, or an access token.
	for name, hint := range map[string]string{"garbage": "garbage", "access token": adaAccess} {
		if _, q, _ := ask(t, hint, "none"); q.Get("error") != "invalid_request" || q.Has("code") {
			t.Errorf("%s as id_token_hint: %v, want invalid_request", name, q)
		}
	}
	// Nobody signed in: the person signs in first, and the hint comes back
	// with the request, to be judged then.
	e.jar.SetCookies(mustURL(t, e.base), []*http.Cookie{{Name: "test_principal", Value: "", Path: "/", MaxAge: -1}})
	resp, _, _ = ask(t, adaHint, "")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	back, _ := url.Parse(loc.Query().Get("return_to"))
	if !strings.HasSuffix(loc.Path, "/login") || back.Query().Get("id_token_hint") != adaHint {
		t.Fatalf("signed out: to %q, want the sign-in page returning with the hint", loc)
	}
	e.signIn(t, e.other)
	if r, b := mustGet(t, e.browser, e.base+back.String()); r.StatusCode != http.StatusFound ||
		!strings.Contains(r.Header.Get("Location"), "error=login_required") {
		t.Errorf("back from sign-in as Bob with Ada's hint: %d %q %q", r.StatusCode, r.Header.Get("Location"), b)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
