package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

// TestAuthorizationCodeReauthentication: max_age and prompt=login (OIDC
// Core §3.1.2.1). A session signed in longer ago than max_age seconds,
// or any session under prompt=login, is sent to sign in again and back to
// the same request, which the fresh sign-in then satisfies (even
// max_age=0: no loop); the ID token's auth_time is the new sign-in.
// Returning without signing in, or with a marker forged or taken from
// another request, is sent to sign in again; prompt=none answers
// login_required instead; a sign-in time the seam cannot tell is
// login_required, never a loop.
func TestAuthorizationCodeReauthentication(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	// Consent once, remembered from then on, so every answer below is a
	// sign-in or a code.
	e.tokenFor(t, e.user, conf.Scopes...)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.signInAt(t, e.user, old)

	// authTimeOf redeems code and returns the ID token's auth_time.
	authTimeOf := func(t *testing.T, code, verifier string) time.Time {
		t.Helper()
		tok, err := conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("go-oidc Verify: %v", err)
		}
		var claims struct {
			AuthTime int64 `json:"auth_time"`
		}
		if err := idt.Claims(&claims); err != nil || claims.AuthTime == 0 {
			t.Fatalf("ID token without auth_time: %v", err)
		}
		return time.Unix(claims.AuthTime, 0)
	}
	// toSignIn checks resp sends the browser to sign in and returns where
	// it comes back to.
	toSignIn := func(t *testing.T, resp *http.Response, body string) string {
		t.Helper()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasSuffix(loc.Path, "/login") {
			t.Fatalf("answer = %d %q Location %q, want the sign-in page", resp.StatusCode, body, resp.Header.Get("Location"))
		}
		back := loc.Query().Get("return_to")
		if !strings.HasPrefix(back, "/oauth2/authorize?") {
			t.Fatalf("return_to %q, want the authorization request", back)
		}
		return back
	}
	wantError := func(t *testing.T, u, want string) {
		t.Helper()
		resp, body := mustGet(t, e.browser, u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.callback.URL) ||
			loc.Query().Get("error") != want || loc.Query().Get("code") != "" {
			t.Errorf("%s: %d %q Location %q, want error=%s to the client", u, resp.StatusCode, body, resp.Header.Get("Location"), want)
		}
	}
	// reauth runs a request that must send the browser to sign in, signs
	// in afresh, comes back and returns the code's auth_time.
	reauth := func(t *testing.T, opts ...xoauth2.AuthCodeOption) time.Time {
		t.Helper()
		defer e.signInAt(t, e.user, old)
		v, state := xoauth2.GenerateVerifier(), randText(t)
		resp, body := mustGet(t, e.browser, conf.AuthCodeURL(state, append(opts, xoauth2.S256ChallengeOption(v), oidc.Nonce("n"))...))
		back := toSignIn(t, resp, body)
		fresh := time.Now()
		e.signInAt(t, e.user, fresh)
		resp, body = mustGet(t, e.browser, e.base+back)
		if at := authTimeOf(t, e.codeFrom(t, resp, body, state), v); at.Before(fresh.Truncate(time.Second)) {
			t.Errorf("auth_time %s, want the new sign-in %s", at, fresh)
		}
		return fresh
	}
	maxAge := func(s string) xoauth2.AuthCodeOption { return xoauth2.SetAuthURLParam("max_age", s) }
	login := xoauth2.SetAuthURLParam("prompt", "login")
	none := xoauth2.SetAuthURLParam("prompt", "none")

	t.Run("MaxAgeMet", func(t *testing.T) {
		v := xoauth2.GenerateVerifier()
		if at := authTimeOf(t, e.authorize(t, conf, v, maxAge("7200")), v); !at.Equal(old) {
			t.Errorf("auth_time %s, want the session's sign-in %s", at, old)
		}
	})
	t.Run("MaxAgeExceeded", func(t *testing.T) { reauth(t, maxAge("60")) })
	t.Run("MaxAgeZero", func(t *testing.T) { reauth(t, maxAge("0")) })
	t.Run("PromptLogin", func(t *testing.T) {
		e.signInAt(t, e.user, time.Now()) // however fresh the session
		reauth(t, login)
	})
	t.Run("PromptLoginSignedOut", func(t *testing.T) {
		// One sign-in is enough: the first one is the re-authentication.
		u, _ := url.Parse(e.base)
		e.jar.SetCookies(u, []*http.Cookie{{Name: "test_principal", Value: "", Path: "/", MaxAge: -1}})
		reauth(t, login)
	})
	t.Run("BackWithoutSigningIn", func(t *testing.T) {
		resp, body := mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), maxAge("0")))
		back := toSignIn(t, resp, body)
		resp, body = mustGet(t, e.browser, e.base+back) // the old session still
		toSignIn(t, resp, body)
	})
	t.Run("MarkerOfAnotherRequest", func(t *testing.T) {
		resp, body := mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), login))
		back, _ := url.Parse(toSignIn(t, resp, body))
		e.signInAt(t, e.user, time.Now())
		defer e.signInAt(t, e.user, old)
		q := back.Query()
		q.Set("state", "other")
		back.RawQuery = q.Encode()
		resp, body = mustGet(t, e.browser, e.base+back.String())
		toSignIn(t, resp, body)
	})
	t.Run("PromptNone", func(t *testing.T) {
		wantError(t, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), none, maxAge("60")), "login_required")
		wantError(t, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam("prompt", "none login")), "invalid_request")
	})
	t.Run("BadMaxAge", func(t *testing.T) {
		for _, bad := range []string{"-1", "soon", "1.5", "99999999999999999999"} {
			wantError(t, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), maxAge(bad)), "invalid_request")
		}
	})
	t.Run("ConsentScreenKeepsTheRequest", func(t *testing.T) {
		e.signInAt(t, e.user, time.Now())
		defer e.signInAt(t, e.user, old)
		v := xoauth2.GenerateVerifier()
		authTimeOf(t, e.approve(t, conf, v, maxAge("600"), xoauth2.SetAuthURLParam("prompt", "consent")), v)
	})
	t.Run("SignInTimeUnknown", func(t *testing.T) {
		u, _ := url.Parse(e.base)
		e.jar.SetCookies(u, []*http.Cookie{{Name: "test_auth_time", Value: "", Path: "/", MaxAge: -1}})
		defer e.signInAt(t, e.user, old)
		wantError(t, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), maxAge("60")), "login_required")
	})
}
