package web_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestOIDCStartWithManyFlowCookies (docs/security.md T-202): a client
// with no session and no provider account sends one POST
// /login/oidc/test of 64 KiB (within http.max_header_bytes): its own
// anti-CSRF cookie and form value, and a Cookie line of ~2900 names of
// the flow cookie's form. The start is answered at once, sending the
// browser on to the provider, with a handful of Set-Cookie, not one per
// planted cookie.
func TestOIDCStartWithManyFlowCookies(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	csrf := base64.RawURLEncoding.EncodeToString(b)
	var line strings.Builder
	line.WriteString("sts_login_csrf=" + csrf)
	n := 0
	// net/http reads no cookie of a request carrying more than 3000
	// (GODEBUG httpcookiemaxnum), the anti-CSRF one included.
	for ; n < 2900 && line.Len() < 64<<10-600; n++ {
		fmt.Fprintf(&line, "; sts_login.%x=x", n)
	}
	req, _ := http.NewRequest("POST", s.URL+"/login/oidc/test", strings.NewReader(url.Values{"csrf": {csrf}, "return_to": {"/tokens"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", line.String())
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := time.Now()
	resp, err := c.Do(req)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("a start with %d planted flow cookies: %v (after %v)", n, err, took)
	}
	resp.Body.Close()
	flows := 0
	for _, sc := range resp.Cookies() {
		if strings.HasPrefix(sc.Name, "sts_login.") {
			flows++
		}
	}
	t.Logf("%d planted flow cookies: %v, status %d, %d Set-Cookie of flows", n, took, resp.StatusCode, flows)
	if resp.StatusCode != http.StatusFound || flows > 12 {
		t.Errorf("a start with %d planted flow cookies: status %d, %d Set-Cookie of flows (want 302, at most 12)", n, resp.StatusCode, flows)
	}
}
