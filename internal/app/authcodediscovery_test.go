package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

// TestAuthorizationCodeDiscovery: with the browser flow, the discovery
// document read through go-oidc lists the scopes the flow gives meaning
// to (openid first: OIDC Discovery §3) and the ID token's nonce and
// auth_time among the claims, and says request_uri is not supported (its
// default is true); an authorization request with a request object, by
// value or by reference, is answered request_not_supported or
// request_uri_not_supported to the client with its state (OIDC Core
// §3.1.2.6, §6), never by ignoring the object.
func TestAuthorizationCodeDiscovery(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	provider, err := oidc.NewProvider(t.Context(), e.base)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Scopes     []string `json:"scopes_supported"`
		Claims     []string `json:"claims_supported"`
		RequestURI *bool    `json:"request_uri_parameter_supported"`
		Request    *bool    `json:"request_parameter_supported"`
		Modes      []string `json:"response_modes_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"openid", "email", "profile", "offline_access"} {
		if !slices.Contains(meta.Scopes, s) {
			t.Errorf("scopes_supported %v lacks %q", meta.Scopes, s)
		}
	}
	for _, c := range []string{"nonce", "auth_time", "at_hash", "email", "name"} {
		if !slices.Contains(meta.Claims, c) {
			t.Errorf("claims_supported %v lacks %q", meta.Claims, c)
		}
	}
	if meta.RequestURI == nil || *meta.RequestURI || (meta.Request != nil && *meta.Request) {
		t.Errorf("request_uri_parameter_supported %v, request_parameter_supported %v, want false (present) and false or absent", meta.RequestURI, meta.Request)
	}
	// An absent list means query and fragment (OIDC Discovery §3); only
	// query is served.
	if !slices.Equal(meta.Modes, []string{"query"}) {
		t.Errorf("response_modes_supported %v, want [query]", meta.Modes)
	}

	e.signIn(t, e.user)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	for param, want := range map[string]string{"request": "request_not_supported", "request_uri": "request_uri_not_supported"} {
		u := conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam(param, "eyJhbGciOiJub25lIn0.e30."))
		resp, body := mustGet(t, e.browser, u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != want || loc.Query().Get("state") != "st" || loc.Query().Get("code") != "" {
			t.Errorf("authorize with %s: %d %q Location %q, want error=%s with state", param, resp.StatusCode, body, resp.Header.Get("Location"), want)
		}
	}
}
