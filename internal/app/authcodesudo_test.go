package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestAuthorizationCodeRecentSignIn: "sudo mode" at /oauth2/authorize
// (docs/security.md T-140, A-79). With a sign-in older than
// web.session.reauth_after (30 m here, so a 45-minute-old session is too
// old and a 10-minute-old one is not), a request that would show the
// consent screen (a new consent, prompt=consent) or asks for
// offline_access sends the person to sign in again and back to the same
// request (prompt=none: login_required), and a code whose sign-in was too
// old brings no refresh token. Silent renewal of a consented client
// without offline_access keeps working: the code at once, prompt=none
// included, an access token and an ID token go-oidc verifies, whose
// auth_time is the old sign-in.
func TestAuthorizationCodeRecentSignIn(t *testing.T) { testAuthorizationCodeRecentSignIn(t) }

// TestAuthorizationCodeRecentSignInPostgres is the same on PostgreSQL,
// where the code's sign-in time makes a round trip through the database.
func TestAuthorizationCodeRecentSignInPostgres(t *testing.T) {
	t.Parallel()
	testAuthorizationCodeRecentSignIn(t, func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN = sqlstore.DriverPostgres, pgtest.DSN(t)
		c.Issuer, c.IssuerDerived = "http://"+c.Listen, false // required on PostgreSQL (F-32)
	})
}

func testAuthorizationCodeRecentSignIn(t *testing.T, edit ...func(*config.Config)) {
	e := newCodeEnv(t, append(edit, func(c *config.Config) { c.Web.Session.ReauthAfter = 30 * time.Minute })...)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	// A confidential client that may hold refresh tokens and ask for
	// offline_access, its code landing on a loopback address.
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	c, sec, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: e.conf.PrincipalID,
		Name: "Desktop", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"openid", "email", "offline_access"}, Audiences: []string{"https://desktop.example"},
		RedirectURIs: []string{e.callback.URL + "/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	conf := e.oauthConfig(c, sec, e.callback.URL+"/cb")
	conf.Endpoint = provider.Endpoint()
	conf.Endpoint.AuthStyle = xoauth2.AuthStyleInHeader
	offline := *conf
	offline.Scopes = []string{"openid", "email", "offline_access"}
	none := xoauth2.SetAuthURLParam("prompt", "none")
	old := time.Now().Add(-45 * time.Minute).Truncate(time.Second)

	// toSignIn checks the answer to u sends the browser to sign in and
	// returns where it comes back to: the same request.
	toSignIn := func(t *testing.T, u string) string {
		t.Helper()
		resp, body := mustGet(t, e.browser, u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasSuffix(loc.Path, "/login") {
			t.Fatalf("answer = %d %q Location %q, want the sign-in page", resp.StatusCode, body, resp.Header.Get("Location"))
		}
		back := loc.Query().Get("return_to")
		want, _ := url.Parse(u)
		if got, err := url.Parse(back); err != nil || got.Path != "/oauth2/authorize" || got.Query().Get("state") != want.Query().Get("state") ||
			got.Query().Get("scope") != want.Query().Get("scope") {
			t.Fatalf("return_to %q, want the same authorization request %q", back, u)
		}
		return back
	}
	wantError := func(t *testing.T, u, want string) {
		t.Helper()
		resp, body := mustGet(t, e.browser, u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.callback.URL) ||
			loc.Query().Get("error") != want || loc.Query().Get("code") != "" {
			t.Fatalf("%s: %d %q Location %q, want error=%s to the client", u, resp.StatusCode, body, resp.Header.Get("Location"), want)
		}
	}
	// redeem exchanges code with x/oauth2 and verifies the ID token with
	// go-oidc; it returns the tokens and the ID token's auth_time.
	redeem := func(t *testing.T, conf *xoauth2.Config, code, verifier string) (*xoauth2.Token, time.Time) {
		t.Helper()
		tok, err := conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("x/oauth2 Exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("go-oidc Verify: %v", err)
		}
		var claims struct {
			AuthTime int64 `json:"auth_time"`
		}
		if err := idt.Claims(&claims); err != nil || claims.AuthTime == 0 || idt.Subject != e.user.ID {
			t.Fatalf("ID token sub %q auth_time %d (%v), want %s and a sign-in time", idt.Subject, claims.AuthTime, err, e.user.ID)
		}
		// The access token works: go-oidc reads the person's claims with it.
		if ui, err := provider.UserInfo(ctx, xoauth2.StaticTokenSource(tok)); err != nil || ui.Subject != e.user.ID {
			t.Fatalf("go-oidc UserInfo with the access token = %+v, %v", ui, err)
		}
		return tok, time.Unix(claims.AuthTime, 0)
	}

	t.Run("NewConsentSignsInAgain", func(t *testing.T) {
		e.signInAt(t, e.user, old)
		v, state := xoauth2.GenerateVerifier(), randText(t)
		u := conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(v))
		back := toSignIn(t, u)
		// Silent, there is no screen to consent on.
		wantError(t, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(v), none), "consent_required")
		// Back without signing in: still sent to sign in.
		toSignIn(t, e.base+back)
		fresh := time.Now()
		e.signInAt(t, e.user, fresh)
		resp, page := mustGet(t, e.browser, e.base+back)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after signing in again: %d %q, want the consent screen", resp.StatusCode, page)
		}
		form := consentForm(t, page)
		form.Set("sts_consent_decision", "approve")
		resp, body := e.post(t, "/oauth2/authorize", form, nil)
		tok, at := redeem(t, conf, e.codeFrom(t, resp, body, state), v)
		if tok.RefreshToken == "" || at.Before(fresh.Truncate(time.Second)) {
			t.Errorf("after a fresh sign-in: refresh token %t, auth_time %s, want one and the new sign-in %s", tok.RefreshToken != "", at, fresh)
		}
	})
	t.Run("PublicClientNewConsent", func(t *testing.T) {
		// The code of a public client's loopback redirect URI lands on
		// whoever's machine runs the request.
		e.signInAt(t, e.user, old)
		pconf := e.oauthConfig(e.public, "", "http://127.0.0.1:1/cb")
		pconf.Scopes = []string{"openid"}
		toSignIn(t, pconf.AuthCodeURL(randText(t), xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())))
		// Within the bound, the screen is shown at once.
		e.signInAt(t, e.user, time.Now().Add(-10*time.Minute))
		if resp, page := mustGet(t, e.browser, pconf.AuthCodeURL(randText(t), xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))); resp.StatusCode != http.StatusOK {
			t.Fatalf("a 10-minute-old sign-in: %d %q, want the consent screen", resp.StatusCode, page)
		} else {
			consentForm(t, page)
		}
	})
	t.Run("PromptConsentSignsInAgain", func(t *testing.T) {
		e.signInAt(t, e.user, old)
		toSignIn(t, conf.AuthCodeURL(randText(t), xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam("prompt", "consent")))
	})
	t.Run("SignInTimeUnknown", func(t *testing.T) {
		// A sign-in time the seam cannot tell is never a loop.
		u, _ := url.Parse(e.base)
		e.jar.SetCookies(u, []*http.Cookie{{Name: "test_auth_time", Value: "", Path: "/", MaxAge: -1}})
		wantError(t, offline.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())), "login_required")
	})
	t.Run("SilentRenewal", func(t *testing.T) {
		// Consented with a fresh sign-in (the first subtest's consent, or
		// this one's when that one failed), then the session grows old.
		e.signIn(t, e.user)
		if v := xoauth2.GenerateVerifier(); true {
			resp, body := mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(v)))
			if resp.StatusCode == http.StatusOK {
				form := consentForm(t, body)
				form.Set("sts_consent_decision", "approve")
				e.post(t, "/oauth2/authorize", form, nil)
			}
		}
		e.signInAt(t, e.user, old)
		for _, opts := range [][]xoauth2.AuthCodeOption{nil, {none}} {
			v := xoauth2.GenerateVerifier()
			tok, at := redeem(t, conf, e.authorize(t, conf, v, opts...), v)
			if !at.Equal(old) {
				t.Errorf("auth_time %s, want the session's sign-in %s", at, old)
			}
			if tok.RefreshToken != "" {
				t.Errorf("a code from a 45-minute-old sign-in brought a refresh token")
			}
		}
	})
	t.Run("OfflineAccessSignsInAgain", func(t *testing.T) {
		// Consent to offline_access, remembered.
		e.signIn(t, e.user)
		v := xoauth2.GenerateVerifier()
		if tok, _ := redeem(t, &offline, e.approve(t, &offline, v), v); tok.RefreshToken == "" {
			t.Fatal("offline_access with a fresh sign-in: no refresh token")
		}
		e.signInAt(t, e.user, old)
		v, state := xoauth2.GenerateVerifier(), randText(t)
		back := toSignIn(t, offline.AuthCodeURL(state, xoauth2.S256ChallengeOption(v)))
		wantError(t, offline.AuthCodeURL("st", xoauth2.S256ChallengeOption(v), none), "login_required")
		e.signIn(t, e.user)
		resp, body := mustGet(t, e.browser, e.base+back)
		if tok, _ := redeem(t, &offline, e.codeFrom(t, resp, body, state), v); tok.RefreshToken == "" {
			t.Error("offline_access after signing in again: no refresh token")
		}
	})
	t.Run("ConsentDecidedAfterTheBound", func(t *testing.T) {
		// The screen is shown within the bound; by the time the person
		// decides (the form is good for 10 minutes) the sign-in is older
		// than reauth_after, as a copied cookie's would be. Allow is a
		// new consent and may bring a refresh token: the bound is judged
		// again, and the person signs in again and comes back to the same
		// request, with no code issued meanwhile. Deny needs no sign-in.
		e.signIn(t, e.user)
		v, state := xoauth2.GenerateVerifier(), randText(t)
		u := offline.AuthCodeURL(state, xoauth2.S256ChallengeOption(v), xoauth2.SetAuthURLParam("prompt", "consent"))
		resp, page := mustGet(t, e.browser, u)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("consent screen with a fresh sign-in: %d %q", resp.StatusCode, page)
		}
		form := consentForm(t, page)
		e.signInAt(t, e.user, old) // the same session, its sign-in now past the bound
		form.Set("sts_consent_decision", "approve")
		resp, body := e.post(t, "/oauth2/authorize", form, nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasSuffix(loc.Path, "/login") || loc.Query().Get("code") != "" {
			t.Fatalf("Allow after the bound = %d %q Location %q, want the sign-in page and no code", resp.StatusCode, body, resp.Header.Get("Location"))
		}
		back := loc.Query().Get("return_to")
		if got, err := url.Parse(back); err != nil || got.Path != "/oauth2/authorize" || got.Query().Get("state") != state ||
			got.Query().Get("scope") != strings.Join(offline.Scopes, " ") || got.Query().Get("code_challenge") != xoauth2.S256ChallengeFromVerifier(v) {
			t.Fatalf("return_to %q, want the same authorization request", back)
		}
		form.Set("sts_consent_decision", "deny")
		resp, body = e.post(t, "/oauth2/authorize", form, nil)
		if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc == nil ||
			!strings.HasPrefix(loc.String(), e.callback.URL) || loc.Query().Get("error") != "access_denied" {
			t.Errorf("Deny after the bound = %d %q Location %q, want access_denied to the client", resp.StatusCode, body, resp.Header.Get("Location"))
		}
		// Signed in again: back to the same request, its screen, a code
		// with a refresh token.
		e.signIn(t, e.user)
		resp, page = mustGet(t, e.browser, e.base+back)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("back after signing in again: %d %q, want the consent screen", resp.StatusCode, page)
		}
		form = consentForm(t, page)
		form.Set("sts_consent_decision", "approve")
		resp, body = e.post(t, "/oauth2/authorize", form, nil)
		if tok, _ := redeem(t, &offline, e.codeFrom(t, resp, body, state), v); tok.RefreshToken == "" {
			t.Error("offline_access approved after signing in again: no refresh token")
		}
	})
}
