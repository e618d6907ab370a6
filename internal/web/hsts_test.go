package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestStrictTransportSecurity: with an https issuer every answer, of the
// pages, of the authorization and end-session endpoints and of the rest, carries
// Strict-Transport-Security, so a browser that has reached sts over https
// once never again asks for it over plain http, where a first request
// could be stripped (docs/security.md T-106); with an http issuer
// (development, tests) none does. Nor only the pages': an answer no
// route gives (a 404, a 405) carries it too, the browser's own request
// for /favicon.ico among them (docs/security.md T-207). The https server here sits behind an
// imagined TLS-terminating proxy: it is reached over http at its listen
// address.
func TestStrictTransportSecurity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"http issuer", "", ""},
		{"https issuer", "issuer: https://sts.example\n", "max-age=31536000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.yaml)
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, rq := range []struct {
				method, path string
				form         url.Values
			}{
				{http.MethodGet, "/", nil},
				{http.MethodGet, "/login", nil},
				{http.MethodGet, "/login/link", nil},
				{http.MethodPost, "/login/link", url.Values{"token": {"nope"}}},
				{http.MethodGet, "/tokens", nil},
				{http.MethodGet, "/static/app.js", nil},
				{http.MethodGet, "/oauth2/authorize?client_id=nope", nil},
				{http.MethodPost, "/oauth2/authorize", url.Values{"client_id": {"nope"}}},
				{http.MethodGet, "/oauth2/logout", nil},
				{http.MethodGet, "/oauth2/logout?client_id=nope&post_logout_redirect_uri=https%3A%2F%2Fx.example%2F", nil},
				// No route's: the browser's own /favicon.ico, a mistyped
				// page, a method no page takes (docs/security.md T-207).
				{http.MethodGet, "/favicon.ico", nil},
				{http.MethodGet, "/tokens-nope", nil},
				{http.MethodPut, "/tokens", nil},
				{http.MethodPost, "/tokens/x/regenerate/more", nil},
				{http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"nope"}}},
			} {
				req, err := http.NewRequest(rq.method, "http://"+s.Addr+rq.path, strings.NewReader(rq.form.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				if rq.form != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.Header.Values("Strict-Transport-Security"); strings.Join(got, ", ") != tc.want {
					t.Errorf("%s %s (%d): Strict-Transport-Security %q, want %q", rq.method, rq.path, resp.StatusCode, got, tc.want)
				}
			}
		})
	}
}
