package app_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

// frontRequest is one request of the front-door tests: method, path, an
// optional form body and headers.
type frontRequest struct {
	method, path string
	form         url.Values
	hdr          map[string]string
}

func (e *codeEnv) front(t *testing.T, r frontRequest) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequest(r.method, e.base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestAnswersAreNoSniff: every answer of the OAuth endpoints, success and
// refusal, JSON or not, carries X-Content-Type-Options: nosniff, as the
// pages do (docs/security.md F-76): a browser never takes a token answer,
// an error naming a client or a discovery document for script or style.
func TestAnswersAreNoSniff(t *testing.T) {
	e := newCodeEnv(t)
	id, secret := e.serviceClient(t)
	basic := map[string]string{"Authorization": "Basic " + basicAuth(id, secret)}
	tok := e.tokenFor(t, e.user, "openid", "email")
	bearer := map[string]string{"Authorization": "Bearer " + tok.AccessToken}
	for _, r := range []frontRequest{
		{method: "POST", path: "/oauth2/token", form: url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}}, hdr: basic},
		{method: "POST", path: "/oauth2/token", form: url.Values{}},
		{method: "POST", path: "/oauth2/introspect", form: url.Values{"token": {tok.AccessToken}}, hdr: basic},
		{method: "POST", path: "/oauth2/introspect", form: url.Values{"token": {"x"}}},
		{method: "POST", path: "/oauth2/revoke", form: url.Values{"token": {"x"}}, hdr: basic},
		{method: "POST", path: "/oauth2/revoke", form: url.Values{"token": {"x"}}},
		{method: "GET", path: "/oauth2/userinfo", hdr: bearer},
		{method: "GET", path: "/oauth2/userinfo"},
		{method: "POST", path: "/v1/token", form: url.Values{}},
		{method: "POST", path: "/v1/introspect", form: url.Values{}},
		{method: "POST", path: "/sts/v1/oauth2/token", form: url.Values{}},
		{method: "GET", path: "/.well-known/openid-configuration"},
		{method: "GET", path: "/.well-known/jwks.json"},
		{method: "OPTIONS", path: "/oauth2/token", hdr: map[string]string{"Origin": "https://spa.example", "Access-Control-Request-Method": "POST"}},
		{method: "GET", path: "/livez"},
		{method: "GET", path: "/readyz"},
		{method: "GET", path: "/no-such-path"},
	} {
		resp, _ := e.front(t, r) // the body may hold a token: not printed
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s = %d (Content-Type %q): X-Content-Type-Options %q, want nosniff",
				r.method, r.path, resp.StatusCode, resp.Header.Get("Content-Type"), got)
		}
	}
}
