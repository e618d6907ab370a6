package web_test

import (
	"html"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"
)

// TestRelyingPartyReauthAsksTheProvider: a relying party's prompt=login or
// max_age (OIDC Core §3.1.2.1) is met only by a fresh authentication,
// also through an upstream provider (docs/security.md T-178). The
// authorization endpoint used to send the person to the plain sign-in
// page, so a person whose sts session was younger than
// web.session.reauth_after signed in again without the provider being
// asked to authenticate: a provider with a live session of its own (the
// browser left signed in) answered at once, and the relying party got an
// ID token whose auth_time said the person had just authenticated. Now
// the sign-in such a request leads to is a re-authentication: the
// provider is asked max_age=0 and an answer from an earlier sign-in
// there is refused; one that authenticates the person brings the code,
// and an auth_time no older than the request.
func TestRelyingPartyReauthAsksTheProvider(t *testing.T) {
	t.Parallel()
	idp, s, b, erin := providerSession(t, nil)

	rp := newRelyingParty(t, s)
	stale := maps.Clone(erin)
	stale["auth_time"] = time.Now().Add(-time.Hour).Unix()

	for _, tc := range []struct {
		name string
		age  time.Duration // how old the sts session is made before the request
		opt  xoauth2.AuthCodeOption
	}{
		{"prompt=login", 0, xoauth2.SetAuthURLParam("prompt", "login")},
		{"max_age=600 with a session 30 minutes old", 30 * time.Minute, xoauth2.SetAuthURLParam("max_age", "600")},
	} {
		s.ageSessions(t, tc.age)
		verifier := xoauth2.GenerateVerifier()
		asked := time.Now().Truncate(time.Second)
		loginPath := rpAuthorize(t, b, rp, verifier, tc.opt)

		// The provider answers from its sign-in of an hour ago.
		idp.signInAs(stale)
		r := signInFrom(t, b, s, "test", loginPath)
		if seen := idp.seen(); seen.Get("max_age") != "0" {
			t.Errorf("%s: the provider was asked %v, without max_age=0", tc.name, seen)
		}
		if r.status != http.StatusUnauthorized || !strings.Contains(html.UnescapeString(r.body), "did not ask you to sign in again") {
			t.Errorf("%s: a provider answering from an earlier sign-in: %d, want 401 saying so\n%s", tc.name, r.status, r.body)
		}
		if code, _ := rp.cb.got(); code != "" {
			t.Fatalf("%s: a code was issued without a fresh authentication", tc.name)
		}

		// The provider authenticates the person now (max_age was asked).
		idp.signInAs(erin)
		r = signInFrom(t, b, s, "test", loginPath)
		if r.status != http.StatusOK {
			t.Fatalf("%s: the fresh sign-in: %d\n%s", tc.name, r.status, r.body)
		}
		r = approveIfAsked(t, b, s, r)
		code, gotState := rp.cb.got()
		if code == "" || gotState != "st-1" {
			t.Fatalf("%s: callback got code %q state %q, want a code and %q (last page %d)\n%s", tc.name, code, gotState, "st-1", r.status, r.body)
		}
		tok, err := rp.conf.Exchange(t.Context(), code, xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("%s: x/oauth2 Exchange: %v", tc.name, err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.verifier.Verify(t.Context(), raw)
		if err != nil {
			t.Fatalf("%s: go-oidc Verify: %v", tc.name, err)
		}
		var claims struct {
			AuthTime int64 `json:"auth_time"`
		}
		if err := idt.Claims(&claims); err != nil || claims.AuthTime < asked.Unix() {
			t.Errorf("%s: ID token auth_time %d (%v), want no earlier than the request (%d)", tc.name, claims.AuthTime, err, asked.Unix())
		}
	}
}
