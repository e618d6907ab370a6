package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOIDCFlowCookiesLeaveRoomInTheCookieHeader (docs/security.md T-184):
// the flow's cookies are Path=/ (__Host-) and live ten minutes, so every
// request to the origin carries them with the session's; behind nginx's
// default large_client_header_buffers (4 8k) a Cookie line over 8 KiB is
// answered 400 on every page, /login included, before sts can clear
// them. Whatever return_to a sign-in accepts, the Cookie line of a
// signed-in browser stays well under that; a longer one is refused.
func TestOIDCFlowCookiesLeaveRoomInTheCookieHeader(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "u-7", "email": "hal@example.com", "email_verified": true})
	f := follower(t)
	if r := signInWith(t, f, s, "test", "/tokens"); r.status != http.StatusOK {
		t.Fatalf("first sign-in: %d\n%s", r.status, r.body)
	}
	b := &person{s: s, c: &http.Client{Jar: f.Jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	const budget = 7 << 10 // well under nginx's 8 KiB
	accepted := 0
	for _, size := range []int{1 << 10, 3 << 10, 4 << 10, 6 << 10, 9 << 10} {
		long := "/tokens?x=" + incompressible(size)
		m := startFormRE.FindStringSubmatch(b.do(t, http.MethodGet, "/login", nil, nil).body)
		if m == nil {
			t.Fatal("the sign-in page carries no anti-CSRF value")
		}
		r := b.do(t, http.MethodPost, "/login/oidc/test", url.Values{"csrf": {m[1]}, "return_to": {long}}, nil)
		switch r.status {
		case http.StatusFound:
			if size <= 3<<10 {
				accepted++
			}
		case http.StatusBadRequest:
			if !strings.Contains(r.body, "too long") {
				t.Errorf("return_to of %d bytes: 400 without saying why:\n%s", len(long), r.body)
			}
			continue
		default:
			t.Fatalf("return_to of %d bytes: %d", len(long), r.status)
		}
		for _, path := range []string{"/login/oidc/test/callback", "/login", "/tokens", "/oauth2/token"} {
			u, _ := url.Parse(s.URL + path)
			n := len("Cookie: \r\n")
			for i, c := range f.Jar.Cookies(u) {
				if i > 0 {
					n += len("; ")
				}
				n += len(c.Name) + 1 + len(c.Value)
			}
			if n > budget {
				t.Errorf("after a start with a %d-byte return_to, GET %s carries a %d-byte Cookie line, want at most %d",
					len(long), path, n, budget)
			}
		}
	}
	if accepted != 2 {
		t.Errorf("%d of the return_to of 1 and 3 KB accepted, want both", accepted)
	}
}
