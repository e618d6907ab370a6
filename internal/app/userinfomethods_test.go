package app_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/config"
)

// TestUserInfoTokenSentOneWay (docs/security.md T-218): the UserInfo
// endpoint takes the access token in the Authorization header only
// (RFC 6750 §2.1). A request that also carries one in the query or the
// form body uses more than one method, which RFC 6750 §2 forbids and
// §3.1 answers 400 invalid_request; one that carries it only there is
// told where it goes, not that it sent none. go-oidc's UserInfo, which
// sends the header alone, is still answered.
func TestUserInfoTokenSentOneWay(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	tok := e.tokenFor(t, e.user, "openid", "email")
	provider, err := oidc.NewProvider(t.Context(), e.base)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := provider.UserInfo(t.Context(), xoauth2.StaticTokenSource(tok)); err != nil || info.Subject != e.user.ID {
		t.Fatalf("go-oidc UserInfo = %+v, %v", info, err)
	}
	q := url.Values{"access_token": {tok.AccessToken}}.Encode()
	for _, tc := range []struct {
		name, method, query, body string
		header                    bool
	}{
		{"header and query", http.MethodGet, q, "", true},
		{"header and form body", http.MethodPost, "", q, true},
		{"header and query, POST", http.MethodPost, q, "", true},
		{"query only", http.MethodGet, q, "", false},
		{"form body only", http.MethodPost, "", q, false},
	} {
		u := e.base + "/oauth2/userinfo"
		if tc.query != "" {
			u += "?" + tc.query
		}
		req, _ := http.NewRequest(tc.method, u, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if tc.header {
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		www := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_request" || m["sub"] != nil ||
			!strings.HasPrefix(www, "Bearer") || !strings.Contains(www, `error="invalid_request"`) {
			t.Errorf("%s: %d %s WWW-Authenticate %q, want 400 invalid_request and no claims", tc.name, resp.StatusCode, b, www)
		}
	}
}

// userInfoRaw sends one request to the UserInfo endpoint; a chunked body
// has no Content-Length, so the server's cap cuts it off while it is read
// rather than before the handler runs.
func userInfoRaw(t *testing.T, e *codeEnv, method, query, body, bearer string, chunked bool) (int, map[string]any) {
	t.Helper()
	u := e.base + "/oauth2/userinfo"
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length from net/http
	}
	req, _ := http.NewRequest(method, u, rd)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, req)
}

// TestUserInfoTokenHiddenFromParser (docs/security.md T-219): a token in
// the query or the form body is a second method even where Go's
// url.ParseQuery drops its pair (a ';' separator or a bad escape in the
// value), which other parsers on the way keep; the header's token is not
// served. A malformed query or body without access_token is none of the
// endpoint's business: it is answered as before T-218, not blamed on the
// body.
func TestUserInfoTokenHiddenFromParser(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	tok := e.tokenFor(t, e.user, "openid").AccessToken
	for _, tc := range []struct{ name, method, query, body string }{
		{"query, ';' after the token", http.MethodGet, "access_token=" + tok + ";x", ""},
		{"query, ';' before the token", http.MethodGet, "x=1;access_token=" + tok, ""},
		{"query, bad escape in the token", http.MethodGet, "access_token=" + tok + "%zz", ""},
		{"query, escaped name", http.MethodGet, "access%5Ftoken=" + tok + "%zz", ""},
		{"form body, ';' after the token", http.MethodPost, "", "access_token=" + tok + ";x"},
		{"form body, bad escape in the token", http.MethodPost, "", "access_token=" + tok + "%zz"},
	} {
		status, body := userInfoRaw(t, e, tc.method, tc.query, tc.body, tok, false)
		if status != http.StatusBadRequest || body["error"] != "invalid_request" || body["sub"] != nil {
			t.Errorf("%s: %d %v, want 400 invalid_request and no claims", tc.name, status, body)
		}
	}
	for _, tc := range []struct{ name, method, query, body string }{
		{"GET, bad query", http.MethodGet, "x=%zz", ""},
		{"POST, bad query, empty form", http.MethodPost, "x=%zz", ""},
		{"POST, bad form body", http.MethodPost, "", "x=%zz;y"},
	} {
		status, body := userInfoRaw(t, e, tc.method, tc.query, tc.body, tok, false)
		if status != http.StatusOK || body["sub"] != e.user.ID {
			t.Errorf("%s: %d %v, want 200 with the header's subject", tc.name, status, body)
		}
	}
}

// TestUserInfoBodyErrors (docs/security.md F-104): a form body that grows
// past http.max_body_bytes while it is read is 413, as at every other
// endpoint (T-01), not 400; one that cannot be read for another reason (a
// broken chunked encoding) is 400 invalid_request. Neither is answered
// with claims.
func TestUserInfoBodyErrors(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t, func(c *config.Config) { c.HTTP.MaxBodyBytes = 1024 })
	tok := e.tokenFor(t, e.user, "openid").AccessToken
	status, body := userInfoRaw(t, e, http.MethodPost, "", "pad="+strings.Repeat("a", 4096), tok, true)
	if status != http.StatusRequestEntityTooLarge || body["error"] != "invalid_request" || body["sub"] != nil {
		t.Errorf("oversized chunked form: %d %v, want 413 invalid_request", status, body)
	}

	u, _ := url.Parse(e.base)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// "zz" is not a chunk size: reading the body fails.
	_, err = io.WriteString(conn, "POST /oauth2/userinfo HTTP/1.1\r\nHost: "+u.Host+"\r\nAuthorization: Bearer "+tok+
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_request" || m["sub"] != nil {
		t.Errorf("broken chunked body: %d %v, want 400 invalid_request", resp.StatusCode, m)
	}
}
