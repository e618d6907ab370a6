package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"
)

// TestUserInfoTokenSentOneWay (docs/security.md T-225): the UserInfo
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
