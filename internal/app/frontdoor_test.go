package app_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
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
	t.Parallel()
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

// methodSet is an Allow header's methods, sorted.
func methodSet(allow string) string {
	var ms []string
	for m := range strings.SplitSeq(allow, ",") {
		if m = strings.TrimSpace(m); m != "" {
			ms = append(ms, m)
		}
	}
	slices.Sort(ms)
	return strings.Join(ms, ",")
}

// TestMethodRefusals: a known path asked with a method it does not take
// is 405 with an Allow header listing the ones it does, on the health
// checks, discovery and the OAuth endpoints alike (RFC 9110 §15.5.6); an
// unknown path stays 404; OPTIONS of a CORS endpoint lists HEAD wherever
// GET is served; and HEAD of a page behaves as GET without a body
// (RFC 9110 §9.3.2): signed out, it is sent to sign in, not refused.
func TestMethodRefusals(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	for _, tc := range []struct {
		method, path string
		allow        string // sorted, comma-separated
	}{
		{"PUT", "/livez", "GET,HEAD"},
		{"POST", "/livez", "GET,HEAD"},
		{"OPTIONS", "/livez", "GET,HEAD"},
		{"DELETE", "/readyz", "GET,HEAD"},
		{"POST", "/.well-known/jwks.json", "GET,HEAD,OPTIONS"},
		{"PUT", "/.well-known/openid-configuration", "GET,HEAD,OPTIONS"},
		{"DELETE", "/.well-known/oauth-authorization-server", "GET,HEAD,OPTIONS"},
		{"GET", "/oauth2/token", "OPTIONS,POST"},
		{"PUT", "/oauth2/revoke", "OPTIONS,POST"},
		{"DELETE", "/oauth2/userinfo", "GET,HEAD,OPTIONS,POST"},
		{"GET", "/oauth2/introspect", "POST"},
		{"GET", "/v1/token", "POST"},
		{"PUT", "/oauth2/authorize", "GET,HEAD,POST"},
		{"PUT", "/tokens", "GET,HEAD,POST"},
	} {
		resp, _ := e.front(t, frontRequest{method: tc.method, path: tc.path})
		if resp.StatusCode != http.StatusMethodNotAllowed || methodSet(resp.Header.Get("Allow")) != tc.allow {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
	}
	for _, p := range []string{"/nope", "/livez/x", "/oauth2/nope"} {
		if resp, _ := e.front(t, frontRequest{method: "PUT", path: p}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("PUT %s = %d, want 404", p, resp.StatusCode)
		}
	}
	// The CORS endpoints' OPTIONS answers name every method served.
	preflight := map[string]string{"Origin": "https://spa.example", "Access-Control-Request-Method": "POST"}
	for path, allow := range map[string]string{
		"/oauth2/userinfo":       "GET,HEAD,OPTIONS,POST",
		"/oauth2/token":          "OPTIONS,POST",
		"/oauth2/revoke":         "OPTIONS,POST",
		"/.well-known/jwks.json": "GET,HEAD,OPTIONS",
	} {
		for _, hdr := range []map[string]string{nil, preflight} {
			resp, _ := e.front(t, frontRequest{method: "OPTIONS", path: path, hdr: hdr})
			if resp.StatusCode >= 300 || methodSet(resp.Header.Get("Allow")) != allow {
				t.Errorf("OPTIONS %s (preflight %v) = %d Allow %q, want 2xx Allow %s", path, hdr != nil, resp.StatusCode, resp.Header.Get("Allow"), allow)
			}
		}
	}
	// HEAD of a page is GET without a body: signed out, the same redirect
	// to sign in.
	for _, p := range []string{"/tokens", "/tokens/x", "/tokens/x/delete"} {
		get, _ := e.front(t, frontRequest{method: "GET", path: p})
		head, body := e.front(t, frontRequest{method: "HEAD", path: p})
		if head.StatusCode != get.StatusCode || head.Header.Get("Location") != get.Header.Get("Location") || body != "" {
			t.Errorf("HEAD %s = %d Location %q body %d bytes; GET = %d Location %q", p, head.StatusCode, head.Header.Get("Location"), len(body),
				get.StatusCode, get.Header.Get("Location"))
		}
	}
}
