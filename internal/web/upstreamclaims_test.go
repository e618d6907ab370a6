package web_test

import (
	"strings"
	"testing"
)

// upstreamSignIn signs a new browser in through provider "test" of s as the
// provider's claims say, and reports whether it got a session.
func upstreamSignIn(t *testing.T, s *server, p *idp, claims map[string]any) bool {
	t.Helper()
	p.signInAs(claims)
	b := follower(t)
	signInWith(t, b, s, "test", "")
	return hasSession(s, b)
}

// TestOIDCEmailVerifiedSpellings (docs/security.md F-115): some providers
// send email_verified as the string "true" or "false" in the ID token, as
// go-oidc's own UserInfo reading allows. sts read the claim into a bool,
// so every such sign-in was refused as unreadable claims, even through a
// provider linking by subject, which never looks at the email. Now the
// string "true" is verified, and anything else but true is not: the
// string "false", another string and an absent claim never link an email.
func TestOIDCEmailVerifiedSpellings(t *testing.T) {
	t.Parallel()
	t.Run("sub", func(t *testing.T) {
		t.Parallel()
		p := newIDP(t)
		s := startServer(t, oidcYAML(p, "sub", "default"))
		if !upstreamSignIn(t, s, p, map[string]any{"sub": "u-7", "email": "gus@example.com", "email_verified": "true"}) {
			t.Errorf("email_verified \"true\" through a sub-linking provider: no session")
		}
		if !upstreamSignIn(t, s, p, map[string]any{"sub": "u-8", "email": "hal@example.com", "email_verified": "no"}) {
			t.Errorf("email_verified \"no\" through a sub-linking provider: no session")
		}
	})
	t.Run("email", func(t *testing.T) {
		t.Parallel()
		p := newIDP(t)
		s := startServer(t, oidcYAML(p, "email", "default"))
		if !upstreamSignIn(t, s, p, map[string]any{"sub": "u-1", "email": "dora@example.com", "email_verified": "true"}) {
			t.Fatalf("email_verified \"true\": no session")
		}
		for _, v := range []any{"false", "False", "TRUE", "1", 1, map[string]any{"v": true}, nil} {
			claims := map[string]any{"sub": "u-2", "email": "dora@example.com"}
			if v != nil {
				claims["email_verified"] = v
			}
			if upstreamSignIn(t, s, p, claims) {
				t.Errorf("email_verified %#v linked the email", v)
			}
		}
		if n := strings.Count(s.logs.String(), "email missing or not verified"); n != 7 {
			t.Errorf("%d refusals for an unverified email logged, want 7", n)
		}
	})
}

// TestOIDCAuthorizedParty (docs/security.md T-242, F-116): an ID token
// for several audiences was accepted as long as sts's client ID was one
// of them, whatever its azp (authorized party) said, so a token the
// provider issued to another client that merely lists sts among its
// audiences signed a person in. As Keycloak's broker: an azp present must
// be sts's client ID (an empty one is not). A token for several audiences without azp signs in
// (F-116): OpenID Connect Core with errata set 2 no longer asks for azp
// there, and providers send such tokens.
func TestOIDCAuthorizedParty(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "sub", "default"))
	for _, c := range []struct {
		name string
		aud  any
		azp  any // nil: no azp claim
		ok   bool
	}{
		{"one audience, no azp", p.ClientID, nil, true},
		{"one audience, azp ours", p.ClientID, p.ClientID, true},
		{"several audiences, azp ours", []string{p.ClientID, "other-app"}, p.ClientID, true},
		{"several audiences, azp another", []string{p.ClientID, "other-app"}, "other-app", false},
		{"several audiences, no azp", []string{"other-app", p.ClientID}, nil, true},
		{"several audiences, azp empty", []string{"other-app", p.ClientID}, "", false},
		{"one audience, azp not a string", p.ClientID, []string{p.ClientID}, false},
		{"one audience, azp another", p.ClientID, "other-app", false},
	} {
		claims := map[string]any{"sub": "u-" + strings.ReplaceAll(c.name, " ", "-"), "aud": c.aud}
		if c.azp != nil {
			claims["azp"] = c.azp
		}
		if got := upstreamSignIn(t, s, p, claims); got != c.ok {
			t.Errorf("%s: signed in %v, want %v", c.name, got, c.ok)
		}
	}
	if strings.Contains(s.logs.String(), p.ClientSecret) {
		t.Errorf("the client secret is in the log")
	}
}

// TestOIDCCallbackIssuer (docs/security.md T-243): the authorization
// response's iss parameter (RFC 9207) names the provider that answered.
// sts ignored it, so a response another provider sent to this provider's
// callback (a mix-up) was only caught later, if at all. Now an iss that is
// not the provider's issuer is refused before the code is redeemed, and a
// provider that says it sends one (authorization_response_iss_parameter_supported)
// must.
func TestOIDCCallbackIssuer(t *testing.T) {
	t.Parallel()
	t.Run("sent", func(t *testing.T) {
		t.Parallel()
		p := newIDP(t)
		s := startServer(t, oidcYAML(p, "sub", "default"))
		p.ResponseIss = p.URL
		if !upstreamSignIn(t, s, p, map[string]any{"sub": "u-1"}) {
			t.Fatalf("the provider's own iss: no session")
		}
		for _, iss := range []string{"https://other.example", p.URL + "/", strings.ToUpper(p.URL)} {
			p.mu.Lock()
			p.ResponseIss = iss
			p.mu.Unlock()
			if upstreamSignIn(t, s, p, map[string]any{"sub": "u-1"}) {
				t.Errorf("iss %q: signed in", iss)
			}
		}
		if n := strings.Count(s.logs.String(), "authorization response from another issuer"); n != 3 {
			t.Errorf("%d mix-up refusals logged, want 3", n)
		}
	})
	t.Run("advertised", func(t *testing.T) {
		t.Parallel()
		p := newIDP(t)
		p.AdvertiseIss = true
		s := startServer(t, oidcYAML(p, "sub", "default"))
		if upstreamSignIn(t, s, p, map[string]any{"sub": "u-1"}) {
			t.Errorf("no iss from a provider that says it sends one: signed in")
		}
		p.mu.Lock()
		p.ResponseIss = p.URL
		p.mu.Unlock()
		if !upstreamSignIn(t, s, p, map[string]any{"sub": "u-1"}) {
			t.Errorf("the provider's own iss: no session")
		}
	})
}
