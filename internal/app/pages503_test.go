package app_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// TestPagesAnswer503WithRetryAfter (docs/security.md F-88): a page that
// cannot reach storage (the sign-in link form, the authorization and the
// end-session endpoints, each its own page writer) answers 503 with the
// Retry-After every 503 carries (docs/api.md "Errors"), as the OAuth and
// Connect answers on the same outage do.
// (Not parallel: beside parallel tests, under -race -cpu 1, it failed.)
func TestPagesAnswer503WithRetryAfter(t *testing.T) {
	cfg, proxy := pgThroughProxy(t)
	startApp(t, cfg)
	base := "http://" + cfg.Listen
	proxy.Set(faultproxy.Refuse)
	link := url.Values{"token": {strings.Repeat("a", 43)}}
	for _, tc := range []struct {
		name string
		req  func() *http.Request
	}{
		{"sign-in link", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/login/link", strings.NewReader(link.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", base)
			return r
		}},
		{"authorize", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/oauth2/authorize?"+url.Values{"client_id": {"some-client"},
				"redirect_uri": {"https://app.example/cb"}, "response_type": {"code"}, "scope": {"openid"}}.Encode(), nil)
			return r
		}},
		{"end session", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/oauth2/logout?"+url.Values{"client_id": {"some-client"},
				"post_logout_redirect_uri": {"https://app.example/bye"}}.Encode(), nil)
			return r
		}},
		{"tokens, the session unreadable", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/tokens", nil)
			r.AddCookie(&http.Cookie{Name: "sts_session", Value: strings.Repeat("a", 43)})
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("database refused: %d %q, want 503", resp.StatusCode, body)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want a page", resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After %q, want 5", got)
			}
		})
	}
}
