package web_test

import (
	"maps"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

// idTokenAuthTime redeems code and returns the ID token's auth_time.
func idTokenAuthTime(t *testing.T, rp relyingParty, code, verifier string) int64 {
	t.Helper()
	tok, err := rp.conf.Exchange(t.Context(), code, xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	idt, err := rp.verifier.Verify(t.Context(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	_ = idt.Claims(&c)
	return c.AuthTime
}

// TestPromptLoginNotMetWithoutSignIn: the marker's minute of skew is
// applied to every session, not only to a provider's clock at a sign-in
// made after the marker. A session whose authentication was 45 s before
// the relying party's prompt=login request meets it when the browser
// simply loads the marked return URL, signing in nowhere.
func TestPromptLoginNotMetWithoutSignIn(t *testing.T) {
	t.Parallel()
	_, s, b, _ := providerSession(t, map[string]any{"auth_time": time.Now().Add(-45 * time.Second).Unix()})
	rp := newRelyingParty(t, s)
	time.Sleep(1100 * time.Millisecond) // the session began before the request, in an earlier second
	verifier := xoauth2.GenerateVerifier()
	asked := time.Now().Unix()
	loginPath := rpAuthorize(t, b, rp, verifier, xoauth2.SetAuthURLParam("prompt", "login"))
	lp, _ := url.Parse(loginPath)
	// No sign-in at all: the browser loads the marked request.
	r := approveIfAsked(t, b, s, get(t, b, s.URL+lp.Query().Get("return_to")))
	if code, _ := rp.cb.got(); code != "" {
		at := idTokenAuthTime(t, rp, code, verifier)
		t.Errorf("prompt=login met with no sign-in after the request: code issued, ID token auth_time %d, request at %d (%d s before)",
			at, asked, asked-at)
	} else {
		t.Logf("no code: %d", r.status)
	}
}

// TestFutureProviderAuthTimeIsUnknown: a provider's auth_time ahead
// of sts's clock (its clock fast, answering from its own earlier sign-in)
// is clamped to now, which meets any later demand: prompt=login is met
// by a plain sign-in the provider answered at once.
func TestFutureProviderAuthTimeIsUnknown(t *testing.T) {
	t.Parallel()
	idp, s, b, erin := providerSession(t, nil)
	rp := newRelyingParty(t, s)
	future := maps.Clone(erin)
	future["auth_time"] = time.Now().Add(10 * time.Minute).Unix() // same earlier sign-in, fast clock
	idp.signInAs(future)
	verifier := xoauth2.GenerateVerifier()
	loginPath := rpAuthorize(t, b, rp, verifier, xoauth2.SetAuthURLParam("prompt", "login"))
	lp, _ := url.Parse(loginPath)
	if r := signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("plain sign-in: %d", r.status)
	}
	approveIfAsked(t, b, s, get(t, b, s.URL+lp.Query().Get("return_to")))
	if code, _ := rp.cb.got(); code != "" {
		at := idTokenAuthTime(t, rp, code, verifier)
		t.Errorf("prompt=login met by a provider auth_time 10 min in the future (no max_age asked of it): ID token auth_time %d (now %d)",
			at, time.Now().Unix())
	}
	_ = oidc.Nonce
}
