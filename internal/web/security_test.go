package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/web"
)

// person is an HTTP client with its own cookie jar, as one browser.
type person struct {
	s *server
	c *http.Client
}

func newPerson(t *testing.T, s *server) *person {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &person{s: s, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (p *person) do(t *testing.T, method, path string, form url.Values, hdr map[string]string) reply {
	t.Helper()
	if form == nil {
		return p.send(t, method, path, nil, hdr)
	}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	maps.Copy(h, hdr)
	return p.send(t, method, path, strings.NewReader(form.Encode()), h)
}

// send is do with the body as given (nil for none), for a body that is
// no form, such as a gzipped one.
func (p *person) send(t *testing.T, method, path string, body io.Reader, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, p.s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// signIn opens a fresh sign-in link for user and posts its secret the way
// static/app.js does.
func (p *person) signIn(t *testing.T, user, returnTo string) reply {
	t.Helper()
	link := p.s.loginLink(t, user)
	_, sec, _ := strings.Cut(link, "#")
	r := p.do(t, http.MethodPost, "/login/link", url.Values{"token": {sec}, "return_to": {returnTo}}, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	return r
}

var secretRE = regexp.MustCompile(`sts_pat_[0-9A-Za-z]{36}`)

// createPAT creates a token through the page and returns the secret shown.
func (p *person) createPAT(t *testing.T, name, permission string) string {
	t.Helper()
	r := p.do(t, http.MethodPost, "/tokens", url.Values{"name": {name}, "permission": {permission}, "expires": {"30"}}, nil)
	sec := secretRE.FindString(r.body)
	if r.status != http.StatusOK || sec == "" {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	return sec
}

func (s *server) store(t *testing.T) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: s.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var patIDRE = regexp.MustCompile(`href="/tokens/([0-9a-f-]{36})"`)

// TestWebSecurity holds the page's security properties on one real
// server (docs/security.md T-80 … T-88, A-20, A-21).
func TestWebSecurity(t *testing.T) {
	s := startServer(t)
	if !strings.Contains(s.logs.String(), "sts login-link --user admin") {
		t.Errorf("the first-start hint does not mention sts login-link:\n%s", s.logs)
	}
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")

	// T-80, T-83: strict CSP without inline script or style, no framing,
	// nothing cached.
	t.Run("HeadersAndNoInlineScript", func(t *testing.T) {
		for _, path := range []string{"/login", "/login/link", "/tokens"} {
			r := ada.do(t, http.MethodGet, path, nil, nil)
			if r.status != 200 {
				t.Fatalf("GET %s: %d", path, r.status)
			}
			csp := r.header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("GET %s: CSP %q allows unsafe sources", path, csp)
			}
			if got := r.header.Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("GET %s: X-Frame-Options %q", path, got)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("GET %s: Cache-Control %q", path, got)
			}
			if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(r.body) || strings.Contains(r.body, " style=") ||
				strings.Contains(r.body, "<style") || regexp.MustCompile(`\son[a-z]+=`).MatchString(r.body) {
				t.Errorf("GET %s: inline script or style in the page", path)
			}
		}
		r := ada.do(t, http.MethodGet, "/static/htmx.min.js", nil, nil)
		if r.status != 200 || !strings.Contains(r.body, "htmx") {
			t.Errorf("htmx is not served from our origin: %d", r.status)
		}
	})

	// Every control has a label (the browser test finds them by it).
	t.Run("EveryControlLabelled", func(t *testing.T) {
		ada.createPAT(t, "labels", "none")
		id := patIDRE.FindStringSubmatch(ada.do(t, http.MethodGet, "/tokens", nil, nil).body)
		if id == nil {
			t.Fatal("no token listed")
		}
		paths := []string{"/login/link", "/tokens", "/tokens/" + id[1], "/tokens/" + id[1] + "/delete"}
		control := regexp.MustCompile(`<(input|select)\b[^>]*>`)
		for _, path := range paths {
			body := ada.do(t, http.MethodGet, path, nil, nil).body
			for _, c := range control.FindAllString(body, -1) {
				if strings.Contains(c, `type="hidden"`) {
					continue
				}
				m := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(c)
				if m == nil || !strings.Contains(body, `<label for="`+m[1]+`"`) {
					t.Errorf("%s: control without a label: %s", path, c)
				}
			}
			for _, b := range regexp.MustCompile(`<button[^>]*>([^<]*)</button>`).FindAllStringSubmatch(body, -1) {
				if strings.TrimSpace(b[1]) == "" {
					t.Errorf("%s: button without a name: %s", path, b[0])
				}
			}
		}
	})

	// T-81: a cross-origin form post is refused and changes nothing.
	t.Run("CrossOriginPostRefused", func(t *testing.T) {
		for _, hdr := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			{"Origin": "https://evil.example"},
		} {
			r := ada.do(t, http.MethodPost, "/tokens", url.Values{"name": {"csrf"}, "permission": {"full"}, "expires": {"30"}}, hdr)
			if r.status != http.StatusForbidden || secretRE.MatchString(r.body) {
				t.Errorf("cross-origin POST %v: %d", hdr, r.status)
			}
		}
		if list := ada.do(t, http.MethodGet, "/tokens", nil, nil); strings.Contains(list.body, "csrf") {
			t.Error("a cross-origin POST created a token")
		}
	})

	// T-88: a token name is escaped wherever it is shown.
	t.Run("TokenNameEscaped", func(t *testing.T) {
		name := `<script>alert(1)</script><img src=x onerror=alert(2)>`
		ada.createPAT(t, name, "none")
		r := ada.do(t, http.MethodGet, "/tokens", nil, nil)
		if strings.Contains(r.body, "<script>alert(1)") || strings.Contains(r.body, "<img src=x") {
			t.Fatal("the token name reached the page unescaped")
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("the escaped name is not listed:\n%s", r.body)
		}
	})

	// T-82: the session cookie is replaced at sign-in; a value planted
	// before sign-in never becomes a session, and the old session of a
	// person who signs in again stops working.
	t.Run("SessionFixation", func(t *testing.T) {
		mallory := newPerson(t, s)
		u, _ := url.Parse(s.URL)
		planted := strings.Repeat("A", 43)
		mallory.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.CookieInsecure, Value: planted, Path: "/"}})
		r := mallory.signIn(t, "admin", "")
		var got string
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == web.CookieInsecure {
				got = c.Value
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
					t.Errorf("session cookie attributes: %+v", c)
				}
			}
		}
		if got == "" || got == planted {
			t.Fatalf("sign-in kept the planted session value (%q)", got)
		}
		first := got
		r = mallory.signIn(t, "admin", "")
		if strings.Contains(r.header.Get("Set-Cookie"), first) {
			t.Fatal("a second sign-in reused the session value")
		}
		stale := newPerson(t, s)
		stale.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.CookieInsecure, Value: first, Path: "/"}})
		if r := stale.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusSeeOther {
			t.Errorf("the replaced session still works: %d", r.status)
		}
	})

	// T-85: returnTo is honoured only for a local path.
	t.Run("OpenRedirectRefused", func(t *testing.T) {
		for returnTo, want := range map[string]string{
			"/tokens?x=1":           "/tokens?x=1",
			"https://evil.example/": "/tokens",
			"//evil.example/":       "/tokens",
			"/\\evil.example":       "/tokens",
			"javascript:alert(1)":   "/tokens",
			// Control characters, as sent or percent-encoded, anywhere:
			// no page of ours has one, and a proxy, a log or a client
			// that decodes the Location would read a line break there.
			"/%0d%0aSet-Cookie:%20a=b":   "/tokens",
			"/tokens/x%0A":               "/tokens",
			"/tokens?q=%0d%0aX:%20y":     "/tokens",
			"/tokens#%0a":                "/tokens",
			"/tokens/x%00":               "/tokens",
			"/tokens/x%09":               "/tokens",
			"/tokens/x%7f":               "/tokens",
			"/tokens/x%C2%85":            "/tokens",
			"/tokens/x\x00":              "/tokens",
			"/tokens/x\x1b[2J":           "/tokens",
			"/tokens/x\x7f":              "/tokens",
			"/tokens?q=a%20b%2Fc%25%0":   "/tokens?q=a%20b%2Fc%25%0",
			"/tokens?name=%C3%A9t%C3%A9": "/tokens?name=%C3%A9t%C3%A9",
			// Dot segments: http.Redirect cleans "/a/../" away and a
			// browser resolves "%2e%2e", each leaving "/%2F%2Fhost".
			"/a/../%2F%2Fevil.example":     "/tokens",
			"/%2e%2e/%2F%2Fevil.example":   "/tokens",
			"/%2E%2E/%5Cevil.example":      "/tokens",
			"/x#/../../%2F%2Fevil.example": "/tokens",
			"/tokens/./x":                  "/tokens",
			"/tokens/a.b?next=/../..":      "/tokens/a.b?next=/../..",
			"/tokens/../login":             "/tokens",
			"/%2e%2e/login":                "/tokens",
		} {
			r := newPerson(t, s).signIn(t, "admin", returnTo)
			if loc := r.header.Get("Location"); loc != want {
				t.Errorf("return_to %q: Location %q, want %q", returnTo, loc, want)
			}
		}
		r := newPerson(t, s).do(t, http.MethodGet, "/tokens/x?y=1", nil, nil)
		if loc := r.header.Get("Location"); loc != "/login?return_to=%2Ftokens%2Fx%3Fy%3D1" {
			t.Errorf("signed-out page: Location %q", loc)
		}
	})

	// T-86: no secret (link, session, PAT) in a URL, a log line or the
	// audit trail.
	t.Run("NoSecretInURLLogOrAudit", func(t *testing.T) {
		p := newPerson(t, s)
		link := s.loginLink(t, "admin")
		_, linkSecret, _ := strings.Cut(link, "#")
		r := p.do(t, http.MethodPost, "/login/link", url.Values{"token": {linkSecret}}, nil)
		if loc := r.header.Get("Location"); strings.Contains(loc, linkSecret) || r.status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d %q", r.status, loc)
		}
		u, _ := url.Parse(s.URL)
		session := p.c.Jar.Cookies(u)[0].Value
		pat := p.createPAT(t, "logged?", "full")
		audit := s.sts(t, "audit", "list", "--limit", "500")
		if !strings.Contains(audit, web.ActionSignIn) || !strings.Contains(audit, "pat.create") {
			t.Fatalf("the audit trail lacks the sign-in or the token:\n%s", audit)
		}
		for what, sec := range map[string]string{"link": linkSecret, "session": session, "pat": pat} {
			if strings.Contains(s.logs.String(), sec) {
				t.Errorf("the %s secret is in the log", what)
			}
			if strings.Contains(audit, sec) {
				t.Errorf("the %s secret is in the audit trail", what)
			}
		}
	})

	// T-87: every unusable link gets the same answer.
	t.Run("SameAnswerForEveryBadLink", func(t *testing.T) {
		used := s.loginLink(t, "admin")
		_, usedSecret, _ := strings.Cut(used, "#")
		newPerson(t, s).do(t, http.MethodPost, "/login/link", url.Values{"token": {usedSecret}}, nil)
		expiring := s.sts(t, "login-link", "--user", "admin", "--valid-for", "1s")
		_, expiredSecret, _ := strings.Cut(expiring, "#")
		time.Sleep(1100 * time.Millisecond)
		var first reply
		for i, sec := range []string{"", "short", strings.Repeat("x", 43), usedSecret, expiredSecret} {
			r := newPerson(t, s).do(t, http.MethodPost, "/login/link", url.Values{"token": {sec}}, nil)
			if r.status != http.StatusUnauthorized {
				t.Errorf("bad link %d: %d", i, r.status)
			}
			if i == 0 {
				first = r
			} else if r.body != first.body {
				t.Errorf("bad link %d answers differently:\n%s\nvs\n%s", i, r.body, first.body)
			}
			if len(r.header.Values("Set-Cookie")) != 0 {
				t.Errorf("bad link %d set a cookie", i)
			}
		}
	})

	// T-105: the link page opened from another site (or by a browser that
	// does not say where from) fills in the code but waits for a click,
	// and says why; opened from outside any site or from our own pages it
	// signs in at once.
	t.Run("LinkFromAnotherSiteWaitsForAClick", func(t *testing.T) {
		for site, auto := range map[string]bool{"none": true, "same-origin": true, "same-site": false, "cross-site": false, "": false} {
			hdr := map[string]string{}
			if site != "" {
				hdr["Sec-Fetch-Site"] = site
			}
			r := newPerson(t, s).do(t, http.MethodGet, "/login/link?return_to=%2Ftokens", nil, hdr)
			if r.status != http.StatusOK {
				t.Fatalf("Sec-Fetch-Site %q: %d", site, r.status)
			}
			if got := strings.Contains(r.body, "data-auto-submit"); got != auto {
				t.Errorf("Sec-Fetch-Site %q: signs in without a click = %v, want %v", site, got, auto)
			}
			if got := strings.Contains(r.body, `id="link-warning"`); got == auto {
				t.Errorf("Sec-Fetch-Site %q: says why it waits for a click = %v, want %v", site, got, !auto)
			}
		}
	})

	// T-105: a link never replaces another person's session unasked. The
	// question names both; the link it answers is spent, and its form
	// carries a new code that switches on a click. A person's own link
	// signs them in again at once.
	t.Run("LinkAsksBeforeReplacingAnotherPerson", func(t *testing.T) {
		s.sts(t, "principal", "create", "--org", "default", "--name", "mallory")
		p := newPerson(t, s)
		p.signIn(t, "admin", "")
		_, sec, _ := strings.Cut(s.loginLink(t, "mallory"), "#")
		r := p.do(t, http.MethodPost, "/login/link", url.Values{"token": {sec}, "return_to": {"/tokens?x=1"}}, nil)
		if r.status != http.StatusOK || !strings.Contains(r.body, "You are signed in as <strong>admin</strong>") ||
			!strings.Contains(r.body, "Sign in as mallory") || len(r.header.Values("Set-Cookie")) != 0 {
			t.Fatalf("another person's link: %d %v\n%s", r.status, r.header.Values("Set-Cookie"), r.body)
		}
		if who := signedInAs(t, p); who != "admin" {
			t.Fatalf("after the question, signed in as %q, want admin", who)
		}
		if again := newPerson(t, s).do(t, http.MethodPost, "/login/link", url.Values{"token": {sec}}, nil); again.status != http.StatusUnauthorized {
			t.Errorf("the link the question answered still signs in: %d", again.status)
		}
		form := url.Values{}
		for _, m := range hiddenRE.FindAllStringSubmatch(r.body, -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		if code := form.Get("token"); len(code) != 43 || code == sec {
			t.Fatalf("the question's form carries code %q", code)
		}
		r = p.do(t, http.MethodPost, "/login/link", form, nil)
		if loc := r.header.Get("Location"); r.status != http.StatusSeeOther || loc != "/tokens?x=1" {
			t.Fatalf("switch: %d to %q", r.status, loc)
		}
		if who := signedInAs(t, p); who != "mallory" {
			t.Fatalf("after switching, signed in as %q, want mallory", who)
		}
		if again := newPerson(t, s).do(t, http.MethodPost, "/login/link", form, nil); again.status != http.StatusUnauthorized {
			t.Errorf("the question's code signs in twice: %d", again.status)
		}
		p.signIn(t, "mallory", "")
	})

	// a person acts only on their own tokens and sessions; another
	// person's PAT or session id is "not found" and stays untouched.
	t.Run("OnlyOwnTokensAndSessions", func(t *testing.T) {
		s.sts(t, "principal", "create", "--org", "default", "--name", "bob")
		bob := newPerson(t, s)
		bob.signIn(t, "bob", "")
		bobSecret := bob.createPAT(t, "bob's", "full")
		m := patIDRE.FindStringSubmatch(bob.do(t, http.MethodGet, "/tokens", nil, nil).body)
		if m == nil {
			t.Fatal("bob's token is not listed")
		}
		bobPAT := m[1]
		st := s.store(t)
		bobRec, err := st.GetPAT(t.Context(), bobPAT)
		if err != nil {
			t.Fatal(err)
		}
		sessions, err := st.ListWebSessions(t.Context(), bobRec.OwnerID)
		if err != nil || len(sessions) != 1 {
			t.Fatalf("bob's sessions: %v %v", sessions, err)
		}
		for _, c := range []struct {
			method, path string
			form         url.Values
		}{
			{http.MethodGet, "/tokens/" + bobPAT, nil},
			{http.MethodPost, "/tokens/" + bobPAT, url.Values{"name": {"mine now"}, "permission": {"none"}}},
			{http.MethodPost, "/tokens/" + bobPAT + "/regenerate", url.Values{"expires": {"30"}}},
			{http.MethodGet, "/tokens/" + bobPAT + "/delete", nil},
			{http.MethodPost, "/tokens/" + bobPAT + "/delete", url.Values{}},
			{http.MethodPost, "/sessions/" + sessions[0].ID + "/end", url.Values{}},
		} {
			r := ada.do(t, c.method, c.path, c.form, nil)
			if r.status != http.StatusNotFound || secretRE.MatchString(r.body) {
				t.Errorf("%s %s as another person: %d", c.method, c.path, r.status)
			}
		}
		if code, _ := s.identity(t, bobSecret); code != 200 {
			t.Errorf("bob's token after the attempts: %d", code)
		}
		if r := bob.do(t, http.MethodGet, "/tokens", nil, nil); r.status != 200 || !strings.Contains(r.body, "bob&#39;s") {
			t.Errorf("bob's session or token name changed: %d", r.status)
		}
	})

	// The person's host authentication tokens are listed without their
	// values and deleted through the vault; another person cannot delete
	// them.
	t.Run("HostTokensWithoutValues", func(t *testing.T) {
		runner := s.sts(t, "principal", "create", "--org", "default", "--kind", "runner", "--name", "r-web")
		t.Setenv("STS_TOKEN", ada.createPAT(t, "host tokens", "full"))
		value := "ghp_" + strings.Repeat("v", 36)
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := cli.Main(t.Context(), []string{"login-link", "--user", "r-web", "--config", s.cfgFile}, &out, &errb); code == 0 || out.Len() != 0 {
			t.Errorf("a sign-in link for a runner: exit %d, printed %q", code, out.String())
		}
		id := s.sts(t, "host-token", "create", "--server", s.URL, "--runner", runner, "--host", "github.example",
			"--token-file", file, "--source", "pat")
		page := ada.do(t, http.MethodGet, "/tokens", nil, nil).body
		if !strings.Contains(page, "github.example") || !strings.Contains(page, runner) || !strings.Contains(page, "/host-tokens/"+id+"/delete") {
			t.Fatalf("the host token is not listed:\n%s", page)
		}
		if strings.Contains(page, value) {
			t.Fatal("the host token's value is on the page")
		}
		s.sts(t, "principal", "create", "--org", "default", "--name", "eve")
		eve := newPerson(t, s)
		eve.signIn(t, "eve", "")
		if r := eve.do(t, http.MethodPost, "/host-tokens/"+id+"/delete", url.Values{}, nil); r.status != http.StatusNotFound {
			t.Errorf("another person deleting the host token: %d", r.status)
		}
		if r := ada.do(t, http.MethodPost, "/host-tokens/"+id+"/delete", url.Values{}, nil); r.status != http.StatusSeeOther {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if page := ada.do(t, http.MethodGet, "/tokens", nil, nil).body; strings.Contains(page, "github.example") {
			t.Error("the deleted host token is still listed")
		}
	})

	// a person sees their sessions and ends one; that browser is
	// signed out, this one stays.
	t.Run("EndOwnSession", func(t *testing.T) {
		here, there := newPerson(t, s), newPerson(t, s)
		here.signIn(t, "admin", "")
		there.signIn(t, "admin", "")
		page := here.do(t, http.MethodGet, "/tokens", nil, nil).body
		ids := regexp.MustCompile(`action="/sessions/([0-9a-f-]{36})/end"`).FindAllStringSubmatch(page, -1)
		st := s.store(t)
		u, _ := url.Parse(s.URL)
		thereRec, err := st.GetWebSessionByDigest(t.Context(), sha(there.c.Jar.Cookies(u)[0].Value))
		if err != nil {
			t.Fatal(err)
		}
		listed := false
		for _, m := range ids {
			listed = listed || m[1] == thereRec.ID
		}
		if !listed {
			t.Fatalf("the other session is not listed:\n%s", page)
		}
		if r := here.do(t, http.MethodPost, "/sessions/"+thereRec.ID+"/end", url.Values{}, nil); r.status != http.StatusSeeOther {
			t.Fatalf("end session: %d", r.status)
		}
		if r := there.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusSeeOther {
			t.Errorf("the ended session still works: %d", r.status)
		}
		if r := here.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
			t.Errorf("this session ended too: %d", r.status)
		}
	})

	// a session dies with its principal (checked on every use).
	//
	// Carol's first page leaves an enabled copy of her in the server's
	// record cache; she is then disabled through another handle on the
	// database, as another replica would, which leaves that copy in place.
	// The next request, one that would mint a PAT, is refused all the same.
	t.Run("DisabledPrincipalSignedOut", func(t *testing.T) {
		s.sts(t, "principal", "create", "--org", "default", "--name", "carol")
		carol := newPerson(t, s)
		carol.signIn(t, "carol", "")
		if r := carol.do(t, http.MethodGet, "/tokens", nil, nil); r.status != 200 {
			t.Fatalf("carol signed in: %d", r.status)
		}
		st := s.store(t)
		ps, _ := st.ListPrincipals(context.Background(), mustOrg(t, st))
		for _, p := range ps {
			if p.Name == "carol" {
				if err := st.UpdatePrincipal(t.Context(), p.ID, func(p storage.Principal) (storage.Principal, error) {
					p.Disabled = true
					return p, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if r := carol.do(t, http.MethodPost, "/tokens", url.Values{"name": {"after-disable"}, "permission": {"full"}, "expires": {"30"}}, nil); r.status != http.StatusUnauthorized || secretRE.MatchString(r.body) {
			t.Errorf("a disabled principal's session still creates a PAT: %d", r.status)
		}
		if r := carol.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusSeeOther {
			t.Errorf("a disabled principal's session still works: %d", r.status)
		}
	})
}

var (
	hiddenRE   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	signedInRE = regexp.MustCompile(`Signed in as <strong>([^<]*)</strong>`)
)

// signedInAs is who /tokens shows p signed in as, "" when p is not.
func signedInAs(t *testing.T, p *person) string {
	t.Helper()
	m := signedInRE.FindStringSubmatch(p.do(t, http.MethodGet, "/tokens", nil, nil).body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func sha(v string) []byte {
	d := sha256.Sum256([]byte(v))
	return d[:]
}

func mustOrg(t *testing.T, st *sqlstore.Store) string {
	t.Helper()
	orgs, err := st.ListOrganizations(t.Context())
	if err != nil || len(orgs) == 0 {
		t.Fatal(orgs, err)
	}
	return orgs[0].ID
}

// TestDisableEndsSessions: disabling a person ends their browser sessions
// and spends their unused sign-in links, whether or not either is used
// while they are disabled: re-enabling them brings neither back
// (docs/security.md A-72). A session not used while its principal was
// disabled used to work again once the principal was re-enabled.
func TestDisableEndsSessions(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.sts(t, "principal", "create", "--org", "default", "--name", "bob")
	bob := newPerson(t, s)
	bob.signIn(t, "bob", "")
	if r := bob.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
		t.Fatalf("bob signed in: %d", r.status)
	}
	link := s.loginLink(t, "bob")
	s.sts(t, "principal", "disable", "bob")
	s.sts(t, "principal", "enable", "bob")
	if r := bob.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusSeeOther {
		t.Errorf("bob's session works again after disable and enable: %d", r.status)
	}
	if r := bob.do(t, http.MethodPost, "/tokens", url.Values{"name": {"after"}, "permission": {"full"}, "expires": {"30"}}, nil); r.status != http.StatusUnauthorized || secretRE.MatchString(r.body) {
		t.Errorf("bob's session creates a PAT after disable and enable: %d", r.status)
	}
	_, sec, _ := strings.Cut(link, "#")
	if r := newPerson(t, s).do(t, http.MethodPost, "/login/link", url.Values{"token": {sec}}, nil); r.status != http.StatusUnauthorized {
		t.Errorf("a sign-in link made before the disable signs in after the enable: %d", r.status)
	}
	// Signing in again after the enable works as ever.
	bob.signIn(t, "bob", "")
	if r := bob.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
		t.Errorf("bob signed in again: %d", r.status)
	}
}
