package web_test

import (
	"bytes"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/web"
)

// TestLoginLinkReturnTo (docs/cli.md "Sign-in links"): `sts login-link
// --return-to PATH` makes a link that lands on PATH after signing in,
// opened over real HTTP as static/app.js does (GET the page, post its
// form with the code from the fragment). A PATH that is not a local path
// by the rule of every return_to (docs/security.md T-85) is refused by
// the command, which then stores no link and prints none.
func TestLoginLinkReturnTo(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const target = "/tokens?from=link"
	link := s.sts(t, "login-link", "--user", "admin", "--return-to", target)
	page, secret, ok := strings.Cut(link, "#")
	if !ok || page != s.URL+"/login/link?return_to="+url.QueryEscape(target) {
		t.Fatalf("login-link --return-to printed %q", link)
	}
	p := newPerson(t, s)
	r := p.do(t, http.MethodGet, strings.TrimPrefix(page, s.URL), nil, map[string]string{"Sec-Fetch-Site": "none"})
	m := regexp.MustCompile(`name="return_to" value="([^"]*)"`).FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("GET %s = %d\n%s", page, r.status, r.body)
	}
	r = p.do(t, http.MethodPost, "/login/link", url.Values{"token": {secret}, "return_to": {html.UnescapeString(m[1])}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != target {
		t.Fatalf("sign-in with the link = %d, Location %q; want 303 to %s", r.status, r.header.Get("Location"), target)
	}
	if r = p.do(t, http.MethodGet, target, nil, nil); r.status != http.StatusOK {
		t.Errorf("GET %s after the sign-in = %d, want the page", target, r.status)
	}

	before := linkEvents(t, s)
	for _, bad := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "/%2F%2Fevil.example",
		"/%5Cevil.example", "/tokens/../login", "/%2e%2e/login", "/./tokens", "tokens", "/tokens\r\nX: y",
		"/tokens%0d%0aX:%20y", "/tokens?q=%0a", "/tokens\x00"} {
		var out, errb bytes.Buffer
		code := cli.Main(t.Context(), []string{"login-link", "--user", "admin", "--return-to", bad, "--config", s.cfgFile}, &out, &errb)
		if code == 0 || out.Len() != 0 || !strings.Contains(errb.String(), "--return-to") {
			t.Errorf("login-link --return-to %q = %d, stdout %q, stderr %q; want refused naming --return-to", bad, code, out.String(), errb.String())
		}
	}
	if after := linkEvents(t, s); after != before {
		t.Errorf("refused login-link commands stored links: %d link events, were %d", after, before)
	}
}

// linkEvents counts the web.login_link.create events: one per stored link.
func linkEvents(t *testing.T, s *server) int {
	t.Helper()
	st := s.store(t)
	evs, err := st.ListAudit(t.Context(), storage.AuditFilter{Action: web.ActionLoginLinkCreate, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}
