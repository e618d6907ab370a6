package web_test

import (
	"html"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"
)

// TestReauthAsksTheProviderToAuthenticate: signing in again for "sudo
// mode" (docs/security.md T-139, T-141) through an upstream provider is a
// fresh authentication. A provider with a live session of its own (the
// browser "left signed in") used to answer at once, so sudo mode cost one
// click. Now the sign-in of a browser whose session is older than
// web.session.reauth_after, or started from the page asking to sign in
// again, sends max_age=0 (OIDC Core §3.1.2.1), and the ID token's
// auth_time must be no older than the flow: a provider that answers from
// its earlier sign-in, or says nothing of when, fails the sign-in with a
// clear page, and the old session stays as it was, unable to mint. A
// first sign-in asks nothing more than before.
func TestReauthAsksTheProviderToAuthenticate(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "email", "default"))
	erin := map[string]any{"sub": "u-7", "email": "erin@example.com", "email_verified": true}
	idp.signInAs(erin)
	b := follower(t)
	if r := signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("first sign-in: %d\n%s", r.status, r.body)
	}
	if seen := idp.seen(); seen.Has("max_age") || seen.Has("prompt") {
		t.Errorf("a first sign-in asked the provider %v: first sign-ins are unchanged", seen)
	}
	s.ageSessions(t, 3*time.Hour)
	erinB := &person{c: b, s: s}
	form := url.Values{"name": {"x"}, "permission": {"full"}, "expires": {"30"}}
	asked := erinB.do(t, http.MethodPost, "/tokens", form, nil)
	reauthReturn(t, "create", asked)
	again := html.UnescapeString(reauthLinkRE.FindStringSubmatch(asked.body)[1])

	// The provider's answer: auth_time as given, null for none.
	withAuthTime := func(at any) map[string]any {
		c := maps.Clone(erin)
		c["auth_time"] = at
		return c
	}
	for _, tc := range []struct {
		name     string
		claims   map[string]any
		refusal  string // "" when the sign-in counts
		browser  *http.Client
		from     string // the sign-in page the form is sent from
		signedIn bool   // whether the browser keeps its old session on a refusal
	}{
		// Whoever sits at the browser opens the sign-in page on their own.
		{"the plain sign-in page: the provider answers from its sign-in of three hours ago",
			withAuthTime(time.Now().Add(-3 * time.Hour).Unix()), "did not ask you to sign in again", b, "/login", true},
		{"the provider says nothing of when", withAuthTime(nil), "did not say when you signed in", b, again, true},
		{"the provider signs the person in again", erin, "", b, again, true},
		// The page's link, followed in a browser whose session ended
		// meanwhile: still a re-authentication.
		{"from the page asking to sign in again, without a session", withAuthTime(time.Now().Add(-time.Hour).Unix()),
			"did not ask you to sign in again", follower(t), again, false},
	} {
		idp.signInAs(tc.claims)
		r := signInFrom(t, tc.browser, s, "test", tc.from)
		if seen := idp.seen(); seen.Get("max_age") != "0" {
			t.Errorf("%s: signing in again asked the provider %v, without max_age=0", tc.name, seen)
		}
		minted := (&person{c: tc.browser, s: s}).do(t, http.MethodPost, "/tokens", form, nil)
		if tc.refusal != "" {
			if r.status != http.StatusUnauthorized || !strings.Contains(html.UnescapeString(r.body), tc.refusal) {
				t.Errorf("%s: %d, want 401 saying %q\n%s", tc.name, r.status, tc.refusal, r.body)
			}
			if minted.status == http.StatusOK || secretRE.MatchString(minted.body) {
				t.Errorf("%s: the browser then minted a PAT: %d", tc.name, minted.status)
			}
			if tc.signedIn && minted.status != http.StatusUnauthorized {
				t.Errorf("%s: the old session after the refusal: %d, want it kept, asking to sign in again", tc.name, minted.status)
			}
			continue
		}
		if r.status != http.StatusOK || minted.status != http.StatusOK || !secretRE.MatchString(minted.body) {
			t.Errorf("%s: sign-in %d, then create %d; want a fresh session that mints", tc.name, r.status, minted.status)
		}
	}
}

// TestSudoJudgesWhenTheProviderAuthenticated (docs/security.md T-191):
// sudo mode judges when the session's sign-in authenticated the person
// (web_sessions.auth_at), not when the session began. Whoever sits at a
// browser left signed in at the provider signed out of sts and in again:
// the provider answered at once, from its sign-in of three hours ago, and
// the brand-new session minted a Full Access PAT with no one
// authenticating. Now that sign-in asks to sign in again; a sign-in the
// provider made a minute ago mints at once.
func TestSudoJudgesWhenTheProviderAuthenticated(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "email", "default"))
	erin := map[string]any{"sub": "u-8", "email": "erin8@example.com", "email_verified": true}
	withAuthTime := func(at any) map[string]any {
		c := maps.Clone(erin)
		c["auth_time"] = at
		return c
	}
	form := url.Values{"name": {"x"}, "permission": {"full"}, "expires": {"30"}}
	b := follower(t)
	erinB := &person{c: b, s: s}

	// A sign-in the provider made a minute ago mints.
	idp.signInAs(withAuthTime(time.Now().Add(-time.Minute).Unix()))
	if r := signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("sign-in: %d\n%s", r.status, r.body)
	}
	if r := erinB.do(t, http.MethodPost, "/tokens", form, nil); r.status != http.StatusOK || !secretRE.MatchString(r.body) {
		t.Fatalf("create after a sign-in the provider made a minute ago: %d, want a new PAT", r.status)
	}

	// Signed out, then in again, the provider answering from its sign-in
	// of three hours ago: a new session, an old authentication.
	if r := erinB.do(t, http.MethodPost, "/logout", url.Values{}, nil); r.status >= 400 {
		t.Fatalf("sign out: %d", r.status)
	}
	idp.signInAs(withAuthTime(time.Now().Add(-3 * time.Hour).Unix()))
	if r := signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("signing in again: %d\n%s", r.status, r.body)
	}
	reauthReturn(t, "create after a sign-in the provider made three hours ago", erinB.do(t, http.MethodPost, "/tokens", form, nil))
}

// TestAuthorizeSudoJudgesWhenTheProviderAuthenticated (docs/security.md
// T-191, T-140, A-79): /oauth2/authorize's sudo mode and the code's
// refresh token judge when the sign-in authenticated the person, as
// /tokens does. Whoever sits at a browser left signed in at the provider
// signs out of sts and in again; the provider answers from its sign-in
// of three hours ago. A consented client's silent code then brings no
// refresh token, and a new consent with offline_access sends the browser
// to sign in again, which asks the provider max_age=0; only that fresh
// sign-in shows the consent screen and brings a refresh family.
func TestAuthorizeSudoJudgesWhenTheProviderAuthenticated(t *testing.T) {
	t.Parallel()
	idp, s, b, erin := providerSession(t, nil)
	cb := newCallback(t)
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", cb.URL+"/cb", "--audience", s.URL, "--scope", "openid", "--scope", "offline_access",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token")
	id := regexp.MustCompile(`^(\S+)\n`).FindStringSubmatch(out)
	sec := regexp.MustCompile(`\n(sts_cs_\S+)$`).FindStringSubmatch(out)
	if id == nil || sec == nil {
		t.Fatalf("client create printed %q", out)
	}
	conf := func(scopes ...string) *xoauth2.Config {
		return &xoauth2.Config{ClientID: id[1], ClientSecret: sec[1], RedirectURL: cb.URL + "/cb", Scopes: scopes,
			Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInHeader}}
	}
	plain, offline := conf("openid"), conf("openid", "offline_access")
	// redeem redeems the code the callback got; it fails the test when
	// there is none.
	redeem := func(what string, c *xoauth2.Config, verifier string) *xoauth2.Token {
		t.Helper()
		code, _ := cb.got()
		if code == "" {
			t.Fatalf("%s: no code", what)
		}
		tok, err := c.Exchange(t.Context(), code, xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return tok
	}

	// Consented with a fresh sign-in.
	verifier := xoauth2.GenerateVerifier()
	approveIfAsked(t, b, s, get(t, b, plain.AuthCodeURL("st", xoauth2.S256ChallengeOption(verifier))))
	if tok := redeem("consent after a fresh sign-in", plain, verifier); tok.RefreshToken == "" {
		t.Fatal("a fresh sign-in's code brought no refresh token")
	}

	// Signed out and in again, the provider answering from three hours ago.
	if r := (&person{c: b, s: s}).do(t, http.MethodPost, "/logout", url.Values{}, nil); r.status >= 400 {
		t.Fatalf("sign out: %d", r.status)
	}
	stale := maps.Clone(erin)
	stale["auth_time"] = time.Now().Add(-3 * time.Hour).Unix()
	idp.signInAs(stale)
	if r := signInWith(t, b, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("signing in again: %d", r.status)
	}
	verifier = xoauth2.GenerateVerifier()
	if r := get(t, b, plain.AuthCodeURL("st", xoauth2.S256ChallengeOption(verifier))); strings.Contains(r.body, `name="sts_consent_csrf"`) {
		t.Fatal("a consented client's request showed the consent screen")
	}
	if tok := redeem("silent code after an old authentication", plain, verifier); tok.RefreshToken != "" {
		t.Error("a code of a sign-in the provider made three hours ago brought a refresh token (A-79)")
	}

	verifier = xoauth2.GenerateVerifier()
	loginPath := rpAuthorize(t, b, relyingParty{conf: offline, cb: cb}, verifier)
	idp.signInAs(erin) // authenticates now when asked max_age
	r := signInFrom(t, b, s, "test", loginPath)
	if seen := idp.seen(); seen.Get("max_age") != "0" {
		t.Errorf("signing in again for offline_access asked the provider %v, want max_age=0", seen)
	}
	if !strings.Contains(r.body, `name="sts_consent_csrf"`) {
		t.Fatalf("after signing in again: %d, want the consent screen\n%s", r.status, r.body)
	}
	approveIfAsked(t, b, s, r)
	if tok := redeem("consent after signing in again", offline, verifier); tok.RefreshToken == "" {
		t.Error("signed in again, the code brought no refresh token")
	}
}
