package grants

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// codeExchange redeems code (m.authCode's form) as x/oauth2 does, with
// opts (SetAuthURLParam: audience, resource, expires_in), through the
// real token endpoint.
func (m *matrixEnv) codeExchange(t *testing.T, c storage.Client, sec string, code map[string][]string, opts ...xoauth2.AuthCodeOption) (*xoauth2.Token, error) {
	t.Helper()
	conf := xoauth2.Config{ClientID: c.ID, ClientSecret: sec, RedirectURL: code["redirect_uri"][0],
		Endpoint: xoauth2.Endpoint{TokenURL: m.srv.URL + PathToken, AuthStyle: xoauth2.AuthStyleInHeader}}
	return conf.Exchange(t.Context(), code["code"][0], append(opts, xoauth2.VerifierOption(code["code_verifier"][0]))...)
}

// targetRefused reports whether err is x/oauth2's invalid_target with
// reason.
func targetRefused(err error, reason string) bool {
	var re *xoauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != oauth2.ErrorInvalidTarget || re.Response.StatusCode != 400 {
		return false
	}
	var body struct{ Reason string }
	return json.Unmarshal(re.Body, &body) == nil && body.Reason == reason
}

// TestAuthorizationCodeNarrowsTarget (docs/security.md T-183): a code
// redeemed with resource or audience (x/oauth2's SetAuthURLParam, as MCP
// clients send resource on every token request) is honoured when each
// value is one the grant covers, the client's first audience, and is
// otherwise invalid_target, leaving the code unspent. Before, both were
// ignored: a code redeemed for a resource the grant does not cover got a
// token for the client's first audience, with no error.
func TestAuthorizationCodeNarrowsTarget(t *testing.T) {
	const api, other = "https://api.example", "https://other.example"
	m := newMatrixEnv(t)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"read"}, Audiences: []string{api, other}})

	code := m.authCode(t, c, "ada", "read")
	for _, opt := range []xoauth2.AuthCodeOption{
		xoauth2.SetAuthURLParam("resource", other),
		xoauth2.SetAuthURLParam("resource", "https://outside.example"),
		xoauth2.SetAuthURLParam("audience", other),
	} {
		if tok, err := m.codeExchange(t, c, sec, code, opt); !targetRefused(err, ReasonAudienceWidening) {
			t.Errorf("code with a target the grant does not cover: %v %v, want invalid_target %s", tok, err, ReasonAudienceWidening)
		}
	}
	// Unspent: the same code is redeemed for the target it covers.
	tok, err := m.codeExchange(t, c, sec, code, xoauth2.SetAuthURLParam("resource", api))
	if err != nil {
		t.Fatalf("code with the resource it covers, after the refusals: %v", err)
	}
	if aud := accessPayload(t, tok.AccessToken).Audience; !slices.Equal([]string(aud), []string{api}) {
		t.Errorf("aud %v, want [%s]", aud, api)
	}
	if tok.RefreshToken == "" {
		t.Errorf("no refresh token")
	}
}

// TestAuthorizationCodeHonoursExpiresIn: a code redeemed with expires_in
// (x/oauth2's SetAuthURLParam) gets an access token, and ID token, of
// that lifetime, as every other grant does (docs/design.md#lifetimes);
// one beyond the maximum is refused, not clamped, and leaves the code
// unspent (docs/security.md T-56). It was ignored: expires_in=60 got the
// default 15 minutes, expires_in=43201 a 200.
func TestAuthorizationCodeHonoursExpiresIn(t *testing.T) {
	m := newMatrixEnv(t)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode},
		Scopes: []string{"read", ScopeOpenID}, Audiences: []string{stsIssuer}})
	code := m.authCode(t, c, "ada", "read openid")
	tok, err := m.codeExchange(t, c, sec, code, xoauth2.SetAuthURLParam("expires_in", "43201"))
	var re *xoauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != oauth2.ErrorInvalidRequest || !strings.Contains(string(re.Body), ReasonLifetimeExceedsMax) {
		t.Errorf("expires_in above the maximum: %v %v, want invalid_request %s", tok, err, ReasonLifetimeExceedsMax)
	}
	tok, err = m.codeExchange(t, c, sec, code, xoauth2.SetAuthURLParam("expires_in", "60"))
	if err != nil {
		t.Fatalf("expires_in=60, after the refusal: %v", err)
	}
	at := accessPayload(t, tok.AccessToken)
	if n, _ := tok.Extra("expires_in").(float64); n != 60 || at.Expiry.Time().Sub(at.IssuedAt.Time()) != time.Minute {
		t.Errorf("expires_in %v, token lives %v; want 60 s", tok.Extra("expires_in"), at.Expiry.Time().Sub(at.IssuedAt.Time()))
	}
	var id struct{ Exp, Iat int64 }
	decodePayload(t, tok.Extra("id_token").(string), &id)
	if id.Exp-id.Iat != 60 {
		t.Errorf("ID token lives %d s, want 60", id.Exp-id.Iat)
	}
}
