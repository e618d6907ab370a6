package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/opensts/sts/internal/oauth2"
)

// withExtra is a transport that adds pairs to every form body it sends:
// what a client's own fields (extra=a&extra=b, a framework's x[]=1&x[]=2)
// or a template writing every parameter it knows, set or not, add to a
// request the client library built.
type withExtra struct {
	extra string
	base  http.RoundTripper
}

func (x withExtra) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return x.base.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	b = append(b, "&"+x.extra...)
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	return x.base.RoundTrip(r)
}

// unknownTwice is a client's own parameters, each sent twice, and OAuth
// parameters sent without a value.
const unknownTwice = "extra=a&extra=b&x%5B%5D=1&x%5B%5D=2"

// TestTokenEndpointsUnknownParameterRepeated: RFC 6749 §3.2 has the
// token endpoint ignore parameters it does not know; only those it knows
// may not be repeated. Every server-to-server endpoint refused any
// parameter sent twice, a client's own (extra=a&extra=b) too. x/oauth2
// (client credentials, code redemption, refresh) is the client here, its
// bodies carrying such a pair; revocation, introspection and the Google
// and Confluent dialects are asked over real HTTP. A known parameter sent
// twice is refused, named (docs/security.md T-225, T-226).
func TestTokenEndpointsUnknownParameterRepeated(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	hc := &http.Client{Transport: withExtra{unknownTwice, http.DefaultTransport}}
	xctx := context.WithValue(ctx, xoauth2.HTTPClient, hc)

	// client_credentials.
	id, sec := e.serviceClient(t)
	cc := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: e.base + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInHeader}
	if tok, err := cc.Token(xctx); err != nil || tok.AccessToken == "" {
		t.Fatalf("x/oauth2 clientcredentials with unknown parameters repeated: %+v, %v", tok, err)
	}
	// authorization_code, then refresh_token at /oauth2/token and at
	// Google's /v1/oauthtoken.
	e.signIn(t, e.user)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	conf.Scopes = []string{"openid", "notes.read"}
	verifier := xoauth2.GenerateVerifier()
	tok, err := conf.Exchange(xctx, e.approve(t, conf, verifier), xoauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("x/oauth2 Exchange with unknown parameters repeated: %+v, %v", tok, err)
	}
	tok.Expiry = tok.Expiry.Add(-24 * 3600e9)
	refreshed, err := conf.TokenSource(xctx, tok).Token()
	if err != nil || refreshed.AccessToken == tok.AccessToken {
		t.Fatalf("x/oauth2 refresh with unknown parameters repeated: %+v, %v", refreshed, err)
	}
	gconf := *conf
	gconf.Endpoint.TokenURL = e.base + "/v1/oauthtoken"
	stale := *refreshed
	stale.Expiry = tok.Expiry
	if g, err := gconf.TokenSource(xctx, &stale).Token(); err != nil || g.AccessToken == "" {
		t.Fatalf("x/oauth2 refresh at /v1/oauthtoken with unknown parameters repeated: %+v, %v", g, err)
	}

	raw := func(t *testing.T, path, body string, basic bool) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(e.conf.ID, e.secret)
		}
		return do(t, req)
	}
	access := refreshed.AccessToken
	// Google's /v1/token, a form as x/oauth2/google/externalaccount sends.
	form := url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "requested_token_type": {oauth2.TokenTypeAccessToken},
		"subject_token": {access}, "subject_token_type": {oauth2.TokenTypeAccessToken}}
	if st, m := raw(t, "/v1/token", form.Encode()+"&"+unknownTwice, false); st != http.StatusOK || m["access_token"] == nil {
		t.Errorf("/v1/token with unknown parameters repeated = %d %v, want 200", st, m)
	}
	// Introspection and revocation (RFC 7662, RFC 7009).
	if st, m := raw(t, "/oauth2/introspect", "token="+url.QueryEscape(access)+"&"+unknownTwice, true); st != http.StatusOK || m["active"] != true {
		t.Errorf("introspection with unknown parameters repeated = %d %v, want active", st, m)
	}
	if st, m := raw(t, "/oauth2/revoke", "token="+url.QueryEscape(refreshed.RefreshToken)+"&"+unknownTwice, true); st != http.StatusOK {
		t.Errorf("revocation with unknown parameters repeated = %d %v, want 200", st, m)
	}
	if _, err := conf.TokenSource(ctx, &stale).Token(); err == nil {
		t.Errorf("refresh after its revocation with unknown parameters repeated succeeded: nothing was revoked")
	}

	// A parameter the endpoint knows, sent twice, is refused and named.
	for _, tc := range []struct {
		path, body, name string
		basic            bool
	}{
		{"/oauth2/token", "grant_type=client_credentials&scope=a&scope=b", "scope", true},
		{"/oauth2/token", "grant_type=client_credentials&expires_in=60&expires_in=60", "expires_in", true},
		{"/oauth2/token", "grant_type=client_credentials&client_id=" + e.conf.ID + "&client_id=" + e.conf.ID, "client_id", true},
		{"/v1/token", form.Encode() + "&options=%7B%7D&options=%7B%7D", "options", false},
		{"/v1/oauthtoken", "grant_type=refresh_token&refresh_token=a&refresh_token=b", "refresh_token", true},
		{"/sts/v1/oauth2/token", "grant_type=client_credentials&identity_pool_id=ci&api_version=sts/v1&api_version=sts/v1", "api_version", true},
		{"/oauth2/introspect", "token=a&token=b", "token", true},
		{"/oauth2/introspect", "token=a&token_type_hint=access_token&token_type_hint=access_token", "token_type_hint", true},
		{"/oauth2/revoke", "token=a&token=b", "token", true},
		{"/oauth2/revoke", "token=a&client_secret=x&client_secret=y", "client_secret", false},
	} {
		st, m := raw(t, tc.path, tc.body, tc.basic)
		desc, _ := m["error_description"].(string)
		if errs, ok := m["errors"].([]any); ok && len(errs) == 1 { // Confluent's shape
			e0, _ := errs[0].(map[string]any)
			m = map[string]any{"error": e0["code"]}
			desc, _ = e0["detail"].(string)
		}
		if st != http.StatusBadRequest || m["error"] != oauth2.ErrorInvalidRequest || !strings.Contains(desc, tc.name) || !strings.Contains(desc, "repeated") {
			t.Errorf("%s with %s twice = %d %v %q, want 400 invalid_request naming it repeated", tc.path, tc.name, st, m["error"], desc)
		}
	}
}

// sentEmpty is every parameter the token endpoints read that a client's
// template may write with no value, next to the ones it sets.
const sentEmpty = "scope=&audience=&resource=&expires_in=&actor_token=&actor_token_type=&requested_token_type=" +
	"&code_verifier=&refresh_token=&redirect_uri=&client_secret=&client_assertion=&client_assertion_type=&token_type_hint="

// TestTokenEndpointsEmptyParameters: RFC 6749 §3.1 has a parameter sent
// without a value treated as if it were omitted. The server-to-server
// endpoints counted it: next to the same parameter with a value it was
// "repeated" (x/oauth2's refresh with refresh_token= added was refused),
// and a client_secret= next to HTTP Basic was a second credential to a
// handler that cannot check one. Each is now omitted; none stands in for
// a requirement: an empty code_verifier is no verifier, an empty
// actor_token no actor token, an empty client_secret no secret
// (docs/security.md T-227).
func TestTokenEndpointsEmptyParameters(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	xctx := context.WithValue(ctx, xoauth2.HTTPClient, &http.Client{Transport: withExtra{sentEmpty, http.DefaultTransport}})

	id, sec := e.serviceClient(t)
	cc := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: e.base + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInHeader,
		EndpointParams: url.Values{"audience": {"", e.base}}}
	if tok, err := cc.Token(xctx); err != nil || tok.AccessToken == "" {
		t.Fatalf("x/oauth2 clientcredentials with empty parameters: %+v, %v", tok, err)
	}
	e.signIn(t, e.user)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	conf.Scopes = []string{"openid", "notes.read"}
	// An empty code_verifier is none: the code's challenge is unmet, and
	// the code is left for the request that sends the verifier.
	verifier := xoauth2.GenerateVerifier()
	code := e.approve(t, conf, verifier)
	if _, err := conf.Exchange(ctx, code, xoauth2.SetAuthURLParam("code_verifier", "")); err == nil {
		t.Fatal("x/oauth2 Exchange with code_verifier sent empty: a token, want the PKCE refusal")
	}
	tok, err := conf.Exchange(xctx, code, xoauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("x/oauth2 Exchange with empty parameters: %+v, %v", tok, err)
	}
	tok.Expiry = tok.Expiry.Add(-24 * 3600e9)
	refreshed, err := conf.TokenSource(xctx, tok).Token()
	if err != nil || refreshed.AccessToken == tok.AccessToken {
		t.Fatalf("x/oauth2 refresh with empty parameters: %+v, %v", refreshed, err)
	}
	gconf := *conf
	gconf.Endpoint.TokenURL = e.base + "/v1/oauthtoken"
	stale := *refreshed
	stale.Expiry = tok.Expiry
	if g, err := gconf.TokenSource(xctx, &stale).Token(); err != nil || g.AccessToken == "" {
		t.Fatalf("x/oauth2 refresh at /v1/oauthtoken with empty parameters: %+v, %v", g, err)
	}

	raw := func(t *testing.T, path, body, id, secret string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(id, secret)
		}
		return do(t, req)
	}
	access := refreshed.AccessToken
	exchange := url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "requested_token_type": {oauth2.TokenTypeAccessToken},
		"subject_token": {access}, "subject_token_type": {oauth2.TokenTypeAccessToken}}
	if st, m := raw(t, "/v1/token", exchange.Encode()+"&options=&audience=&"+sentEmpty, "", ""); st != http.StatusOK || m["access_token"] == nil {
		t.Errorf("/v1/token with empty parameters = %d %v, want 200", st, m)
	}
	hint := "&token_type_hint=access_token&" + sentEmpty
	if st, m := raw(t, "/oauth2/introspect", "token="+url.QueryEscape(access)+hint, e.conf.ID, e.secret); st != http.StatusOK || m["active"] != true {
		t.Errorf("introspection with empty parameters = %d %v, want active", st, m)
	}
	if st, m := raw(t, "/oauth2/revoke", "token="+url.QueryEscape(refreshed.RefreshToken)+hint, e.conf.ID, e.secret); st != http.StatusOK {
		t.Errorf("revocation with empty parameters = %d %v, want 200", st, m)
	}
	if _, err := conf.TokenSource(ctx, &stale).Token(); err == nil {
		t.Errorf("refresh after its revocation with empty parameters succeeded: nothing was revoked")
	}

	// No requirement is met by a parameter sent empty.
	for _, tc := range []struct {
		what, path, body, id, secret string
		status                       int
		code                         string
	}{
		{"an empty actor_token with its type", "/oauth2/token", exchange.Encode() + "&actor_token=&actor_token_type=" + url.QueryEscape(oauth2.TokenTypeAccessToken),
			id, sec, http.StatusBadRequest, oauth2.ErrorInvalidRequest},
		{"a confidential client's empty client_secret", "/oauth2/token", "grant_type=client_credentials&client_id=" + id + "&client_secret=",
			"", "", http.StatusUnauthorized, oauth2.ErrorInvalidClient},
		{"an empty refresh_token", "/oauth2/token", "grant_type=refresh_token&refresh_token=", e.conf.ID, e.secret, http.StatusBadRequest, ""},
		{"an empty token to introspect", "/oauth2/introspect", "token=", e.conf.ID, e.secret, http.StatusBadRequest, oauth2.ErrorInvalidRequest},
		{"an empty token to revoke", "/oauth2/revoke", "token=", e.conf.ID, e.secret, http.StatusBadRequest, oauth2.ErrorInvalidRequest},
		{"an empty client_secret to introspect", "/oauth2/introspect", "token=" + url.QueryEscape(access) + "&client_id=" + e.conf.ID + "&client_secret=",
			"", "", http.StatusUnauthorized, oauth2.ErrorInvalidClient},
	} {
		st, m := raw(t, tc.path, tc.body, tc.id, tc.secret)
		if st != tc.status || (tc.code != "" && m["error"] != tc.code) || m["access_token"] != nil || m["active"] != nil {
			t.Errorf("%s at %s = %d %v, want %d %s", tc.what, tc.path, st, m, tc.status, tc.code)
		}
	}
}
