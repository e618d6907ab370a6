package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
)

// TestRedirectKeepsRegisteredQuery (RFC 6749 §3.1.2): the query of a
// registered redirect URI is retained as registered, byte for byte, when
// code, state and iss, or an error, are added, and so is that of a
// post_logout_redirect_uri when state is added: its order, a parameter
// without "=", its own encoding. The code comes back to the exact URI and
// golang.org/x/oauth2 redeems it with that URI.
func TestRedirectKeepsRegisteredQuery(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	cb := e.callback.URL
	uris := []string{cb + "/order?b=1&a=2", cb + "/flag?flag", cb + "/enc?x=%7E&y=a+b&z=%2F", cb + "/empty?"}
	c, sec, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: e.conf.PrincipalID,
		Name: "query", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid"},
		Audiences: []string{"https://notes.example"}, RedirectURIs: uris})
	if err != nil {
		t.Fatal(err)
	}
	e.signIn(t, e.user)
	// sep is what comes between the registered URI and what is added.
	sep := func(uri string) string {
		if strings.HasSuffix(uri, "?") {
			return ""
		}
		return "&"
	}
	var idToken string
	for i, uri := range uris {
		conf := e.oauthConfig(c, sec, uri)
		conf.Scopes = []string{"openid"}
		verifier := xoauth2.GenerateVerifier()
		resp, page := mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(verifier)))
		if resp.StatusCode == http.StatusOK {
			form := consentForm(t, page)
			form.Set("sts_consent_decision", "approve")
			resp, _ = e.post(t, "/oauth2/authorize", form, nil)
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, uri+sep(uri)+"code=") {
			t.Errorf("code for %q: %d to %q, want the registered URI as registered, then code", uri, resp.StatusCode, loc)
			continue
		}
		u, _ := url.Parse(loc)
		if q := u.Query(); q.Get("state") != "st" || q.Get("iss") != e.base {
			t.Errorf("code for %q: query %v, want state and iss", uri, q)
		}
		tok, err := conf.Exchange(ctx, u.Query().Get("code"), xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Errorf("x/oauth2 Exchange with %q: %v", uri, err)
			continue
		}
		if i == 0 {
			idToken, _ = tok.Extra("id_token").(string)
		}

		// An error (an unknown scope, someone signed in) keeps it too.
		conf.Scopes = []string{"openid", "nonsense"}
		resp, _ = mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(verifier)))
		loc = resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, uri+sep(uri)+"error=invalid_scope&") {
			t.Errorf("error for %q: %d to %q, want the registered URI as registered, then error", uri, resp.StatusCode, loc)
		}
	}

	// Logout: the same for post_logout_redirect_uri.
	if idToken == "" {
		t.Fatal("no ID token")
	}
	v := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {uris[0]}, "state": {"s 1"}}
	resp, _ := mustGet(t, e.browser, e.base+"/oauth2/logout?"+v.Encode())
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != uris[0]+"&state=s+1" {
		t.Errorf("logout: %d to %q, want %q", resp.StatusCode, loc, uris[0]+"&state=s+1")
	}
}
