package web_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/web"
)

func oidcYAML(p *idp, linkClaim, org string) string {
	y := loopbackProviders + "web:\n  login:\n    oidc:\n      - id: test\n        display_name: Test IdP\n        issuer: " + p.URL +
		"\n        client_id: " + p.ClientID + "\n        client_secret: " + p.ClientSecret + "\n        link_claim: " + linkClaim + "\n"
	if org != "" {
		y += "        organization: " + org + "\n"
	}
	return y
}

// follower is a browser that follows redirects across hosts and keeps
// cookies, so the whole round trip through the provider runs.
func follower(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func get(t *testing.T, c *http.Client, u string) reply {
	t.Helper()
	r := (&person{c: c, s: &server{}}).do(t, http.MethodGet, u, nil, nil)
	return r
}

// TestOIDCSignIn signs people in through an upstream OpenID Connect
// provider: authorization code with PKCE S256, state and nonce, the ID
// token verified by go-oidc, the person linked by a verified email (and
// created in the configured organization on first sign-in).
func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))

	if r := newPerson(t, s).do(t, http.MethodGet, "/login", nil, nil); !strings.Contains(r.body, "Sign in with Test IdP") {
		t.Fatalf("the sign-in page does not offer the provider:\n%s", r.body)
	}
	p.signInAs(map[string]any{"sub": "u-1", "email": "dora@example.com", "email_verified": true})
	b := follower(t)
	r := signInWith(t, b, s, "test", "/tokens?from=idp")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>dora@example.com</strong>") {
		t.Fatalf("after the provider: %d\n%s", r.status, r.body)
	}
	if q := p.Seen; q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("redirect_uri") != s.URL+"/login/oidc/test/callback" || !strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("authorization request: %v", q)
	}

	// The same person again: the same principal, not a second one.
	signInWith(t, follower(t), s, "test", "")
	st := s.store(t)
	ps, err := st.ListPrincipals(t.Context(), mustOrg(t, st))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, pr := range ps {
		if pr.Email == "dora@example.com" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d principals for dora@example.com, want 1", n)
	}

	// An unverified email links nobody.
	p.signInAs(map[string]any{"sub": "u-2", "email": "admin@example.com", "email_verified": false})
	if r := signInWith(t, follower(t), s, "test", ""); r.status != http.StatusUnauthorized {
		t.Errorf("unverified email: %d", r.status)
	}
}

// TestOIDCLoginCSRF: a callback URL minted in the attacker's browser does
// not sign the victim in (the state is bound to the browser that started
// the sign-in by a short-lived cookie), and a provider answer whose state
// differs from this browser's is refused (docs/security.md T-89).
func TestOIDCLoginCSRF(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "evil", "email": "mallory@example.com", "email_verified": true})

	// The attacker starts a sign-in and stops at the callback.
	attacker := newPerson(t, s)
	r := signInWith(t, attacker.c, s, "test", "")
	authURL := r.header.Get("Location")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, s.URL+"/login/oidc/test/callback?") {
		t.Fatalf("callback %q", callback)
	}
	cb, _ := url.Parse(callback)

	// The victim opens it: no sign-in in progress in that browser.
	victim := newPerson(t, s)
	r = victim.do(t, http.MethodGet, cb.RequestURI(), nil, nil)
	if r.status != http.StatusUnauthorized || strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "sts_session=") {
		t.Errorf("planted callback: %d %q", r.status, r.header.Get("Set-Cookie"))
	}
	// The victim has a sign-in of their own in progress: the state differs.
	signInWith(t, victim.c, s, "test", "")
	r = victim.do(t, http.MethodGet, cb.RequestURI(), nil, nil)
	if r.status != http.StatusUnauthorized || strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "sts_session=") {
		t.Errorf("planted callback with another flow in progress: %d", r.status)
	}
	// The attacker's own browser would have succeeded (the test is not
	// vacuous), but only once: the flow cookie is single-use.
	r = attacker.do(t, http.MethodGet, cb.RequestURI(), nil, nil)
	if r.status != http.StatusSeeOther || !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "sts_session=") {
		t.Errorf("the attacker's own callback: %d", r.status)
	}
}

// TestOIDCLinkAmbiguous (docs/security.md A-45): a provider without an
// organization links across every organization, so a link claim that
// matches users of two organizations is refused, never guessed; a unique
// one links wherever it is. With the provider's organization set, only
// that organization's users are looked at, so another organization's
// user with the same email neither blocks nor captures the sign-in.
func TestOIDCLinkAmbiguous(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	everywhere := startServer(t, oidcYAML(p, "email", ""))
	confined := startServer(t, oidcYAML(p, "email", "default"))
	homes := map[*server]string{} // the organization each server started with
	for _, s := range []*server{everywhere, confined} {
		st := s.store(t)
		home := mustOrg(t, st)
		homes[s] = home
		other := storage.Organization{ID: storage.NewID(), Name: "other", Tier: "free"}
		if err := st.CreateOrganization(t.Context(), other); err != nil {
			t.Fatal(err)
		}
		for _, u := range []struct{ org, email string }{{home, "eve@example.com"}, {other.ID, "eve@example.com"}, {other.ID, "solo@example.com"}} {
			if err := st.CreatePrincipal(t.Context(), storage.Principal{ID: storage.NewID(), OrgID: u.org, Kind: storage.PrincipalUser,
				Name: u.email, Email: u.email}); err != nil {
				t.Fatal(err)
			}
		}
	}
	signIn := func(s *server, email string) reply {
		t.Helper()
		p.signInAs(map[string]any{"sub": "sub-" + email, "email": email, "email_verified": true})
		return signInWith(t, follower(t), s, "test", "")
	}
	if r := signIn(everywhere, "eve@example.com"); r.status != http.StatusUnauthorized {
		t.Errorf("an email of users in two organizations, no organization configured: %d, want 401", r.status)
	}
	if r := signIn(everywhere, "solo@example.com"); r.status != http.StatusOK || !strings.Contains(r.body, "solo@example.com") {
		t.Errorf("an email of one user, no organization configured: %d, want signed in", r.status)
	}
	if r := signIn(confined, "eve@example.com"); r.status != http.StatusOK || !strings.Contains(r.body, "eve@example.com") {
		t.Errorf("organization configured, another organization's user with the same email: %d, want signed in as this organization's", r.status)
	}
	if r := signIn(confined, "solo@example.com"); r.status != http.StatusOK {
		t.Errorf("organization configured, a person known only to another organization: %d, want a new user here", r.status)
	}
	ps, err := confined.store(t).ListPrincipals(t.Context(), homes[confined])
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, pr := range ps {
		count[pr.Email]++
	}
	// eve linked to the user the organization had, solo made there.
	if count["eve@example.com"] != 1 || count["solo@example.com"] != 1 {
		t.Errorf("users of the configured organization by email: %v, want one eve (linked) and one solo (made)", count)
	}
}

// TestOIDCSessionEndsWithItsProvider (docs/security.md A-51): a session
// begun through an upstream provider is accepted only while that
// provider, with the same issuer and client, is configured. Servers over
// one data directory stand for a restart with a new configuration, or a
// replica running it.
func TestOIDCSessionEndsWithItsProvider(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	p := newIDP(t)
	s1 := startServerIn(t, dir, oidcYAML(p, "email", "default"))
	signedIn := func(s *server, c *http.Client) bool {
		t.Helper()
		r := (&person{s: s, c: c}).do(t, http.MethodGet, "/tokens", nil, nil)
		return r.status == http.StatusOK && strings.Contains(r.body, "Signed in as <strong>dora@example.com</strong>")
	}
	signInDora := func() *http.Client {
		t.Helper()
		p.signInAs(map[string]any{"sub": "u-1", "email": "dora@example.com", "email_verified": true})
		b := follower(t)
		if r := signInWith(t, b, s1, "test", ""); r.status != http.StatusOK || !signedIn(s1, b) {
			t.Fatalf("sign-in through the provider: %d\n%s", r.status, r.body)
		}
		return b
	}
	b := signInDora()

	// The same provider on another server: the session holds (the test is
	// not vacuous, and a restart does not sign people out).
	same := startServerIn(t, dir, oidcYAML(p, "email", "default"))
	if !signedIn(same, b) {
		t.Fatal("the provider unchanged: the session ended")
	}
	// The session list names the provider, not the fingerprint.
	if r := (&person{s: same, c: b}).do(t, http.MethodGet, "/tokens", nil, nil); !strings.Contains(r.body, "<td>oidc:test</td>") {
		t.Errorf("the session list does not show the method as oidc:test:\n%s", r.body)
	}

	// The provider removed: the session ends, on the pages and at the
	// authorization endpoint; sign-in links keep working.
	s2 := startServerIn(t, dir)
	cb := "http://127.0.0.1:1/cb"
	sa := s2.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s2.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", cb, "--audience", s2.URL, "--scope", "openid")
	client := regexp.MustCompile(`^(\S+)`).FindStringSubmatch(out) // the ID, then the secret
	if client == nil {
		t.Fatalf("client create printed %q", out)
	}
	authorize := func(c *http.Client) string {
		t.Helper()
		v := url.Values{"response_type": {"code"}, "client_id": {client[1]}, "redirect_uri": {cb}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}, "prompt": {"none"}}
		noFollow := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		r := (&person{s: s2, c: noFollow}).do(t, http.MethodGet, "/oauth2/authorize?"+v.Encode(), nil, nil)
		loc, _ := url.Parse(r.header.Get("Location"))
		if r.status != http.StatusFound && r.status != http.StatusSeeOther || loc == nil {
			t.Fatalf("authorize: %d %q\n%s", r.status, r.header.Get("Location"), r.body)
		}
		return loc.Query().Get("error")
	}
	if got := authorize(b); got != "login_required" {
		t.Errorf("authorize with the provider removed: error %q, want login_required", got)
	}
	dora := &person{s: s2, c: b}
	if signedIn(s2, b) {
		t.Error("the provider removed: the session still opens /tokens")
	}
	if r := dora.do(t, http.MethodPost, "/tokens", url.Values{"name": {"after-idp-removed"}, "permission": {"full"}, "expires": {"30"}}, nil); r.status != http.StatusUnauthorized || secretRE.MatchString(r.body) {
		t.Errorf("the provider removed: creating a PAT answered %d", r.status)
	}
	ada := newPerson(t, s2)
	ada.signIn(t, "admin", "")
	if code, _ := s2.identity(t, ada.createPAT(t, "by-link", "full")); code != http.StatusOK {
		t.Errorf("a sign-in link's session after the provider went: identity %d", code)
	}
	if got := authorize(ada.c); got != "consent_required" {
		t.Errorf("authorize signed in by link: error %q, want consent_required", got)
	}

	// The provider repointed at another issuer under the same id: the
	// sessions it began end too.
	b = signInDora()
	other := newIDP(t)
	if s3 := startServerIn(t, dir, oidcYAML(other, "email", "default")); signedIn(s3, b) {
		t.Error("the provider repointed at another issuer: the session still opens /tokens")
	}

	// A session stored before sessions named their provider's issuer and
	// client ("oidc:<id>") ends, with the provider configured.
	st := s1.store(t)
	ps, err := st.ListPrincipals(t.Context(), mustOrg(t, st))
	if err != nil {
		t.Fatal(err)
	}
	var doraID string
	for _, pr := range ps {
		if pr.Email == "dora@example.com" {
			doraID = pr.ID
		}
	}
	value := strings.Repeat("x", 43)
	now := storage.Now(time.Now())
	if err := st.CreateWebSession(t.Context(), storage.WebSession{ID: storage.NewID(), Digest: sha(value), OrgID: mustOrg(t, st),
		PrincipalID: doraID, Method: "oidc:test", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	old := follower(t)
	u, _ := url.Parse(s1.URL)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: web.CookieInsecure, Value: value, Path: "/"}})
	if signedIn(s1, old) {
		t.Error(`a session stored as "oidc:test" is still accepted`)
	}
}

// subProvidersYAML configures one provider per idp, each linking by sub
// into the default organization, named by ids.
func subProvidersYAML(ids []string, ps ...*idp) string {
	y := loopbackProviders + "web:\n  login:\n    oidc:\n"
	for i, p := range ps {
		y += "      - id: " + ids[i] + "\n        issuer: " + p.URL + "\n        client_id: " + p.ClientID +
			"\n        client_secret: " + p.ClientSecret + "\n        link_claim: sub\n        organization: default\n"
	}
	return y
}

// signInThrough signs a fresh browser in through provider id of s as the
// subject sub of p, and returns the browser and the last page.
func signInThrough(t *testing.T, s *server, p *idp, id, sub string) (*http.Client, reply) {
	t.Helper()
	p.signInAs(map[string]any{"sub": sub})
	b := follower(t)
	return b, signInWith(t, b, s, id, "")
}

// hasSession reports whether browser b holds a session cookie of s.
func hasSession(s *server, b *http.Client) bool {
	u, _ := url.Parse(s.URL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == web.CookieInsecure {
			return true
		}
	}
	return false
}

// principalsNamed returns the IDs of the default organization's
// principals named name.
func principalsNamed(t *testing.T, s *server, name string) []string {
	t.Helper()
	st := s.store(t)
	ps, err := st.ListPrincipals(t.Context(), mustOrg(t, st))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		if p.Name == name {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// TestOIDCSubLinksIssuerAndSubject (docs/security.md T-104): with
// link_claim: sub, an upstream identity is the pair (issuer, subject),
// since a subject is unique only at its issuer (OpenID Connect Core §2).
// A person lands in the user their identity created or first claimed; the
// same subject at another provider's issuer is refused, never linked, and
// so is a subject named like the instance administrator. A user an
// administrator made under a subject's name is claimed once.
func TestOIDCSubLinksIssuerAndSubject(t *testing.T) {
	t.Parallel()
	corp, partner := newIDP(t), newIDP(t)
	s := startServer(t, subProvidersYAML([]string{"corp", "partner"}, corp, partner))

	// The victim's first sign-in through corp makes user 1001.
	victim, r := signInThrough(t, s, corp, "corp", "1001")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>1001</strong>") {
		t.Fatalf("first sign-in through corp: %d\n%s", r.status, r.body)
	}
	(&person{s: s, c: victim}).createPAT(t, "victim-pat", "full")
	users := principalsNamed(t, s, "1001")
	if len(users) != 1 {
		t.Fatalf("users named 1001 after the first sign-in: %v", users)
	}

	t.Run("SameIdentitySameUser", func(t *testing.T) {
		b, r := signInThrough(t, s, corp, "corp", "1001")
		if r.status != http.StatusOK || !strings.Contains(r.body, "victim-pat") || !hasSession(s, b) {
			t.Errorf("corp's 1001 again: %d, want the user with victim-pat\n%s", r.status, r.body)
		}
		if got := principalsNamed(t, s, "1001"); len(got) != 1 || got[0] != users[0] {
			t.Errorf("users named 1001: %v, want only %s", got, users[0])
		}
	})

	t.Run("SameSubjectOtherIssuerRefused", func(t *testing.T) {
		b, r := signInThrough(t, s, partner, "partner", "1001")
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Sign-in did not complete") || hasSession(s, b) {
			t.Fatalf("partner's 1001: %d, want the sign-in refused\n%s", r.status, r.body)
		}
		if got := principalsNamed(t, s, "1001"); len(got) != 1 || got[0] != users[0] {
			t.Errorf("users named 1001 after partner's 1001: %v, want only %s", got, users[0])
		}
		logs := s.logs.String()
		if !strings.Contains(logs, `"provider":"partner"`) || !strings.Contains(logs, "another upstream identity") {
			t.Errorf("no log line says why partner's 1001 was refused:\n%s", logs)
		}
		if strings.Contains(logs, partner.ClientSecret) || secretRE.MatchString(logs) {
			t.Error("a secret reached the log")
		}
	})

	t.Run("AdminNotClaimable", func(t *testing.T) {
		for _, via := range []struct {
			p  *idp
			id string
		}{{corp, "corp"}, {partner, "partner"}} {
			if b, r := signInThrough(t, s, via.p, via.id, "admin"); r.status != http.StatusUnauthorized || hasSession(s, b) {
				t.Errorf("%s's subject admin: %d, want refused\n%s", via.id, r.status, r.body)
			}
		}
		if got := principalsNamed(t, s, "admin"); len(got) != 1 {
			t.Errorf("principals named admin: %v, want the one bootstrap made", got)
		}
	})

	t.Run("QualifiedNameClaimedOnce", func(t *testing.T) {
		// With two issuers linking by sub, a name alone does not say
		// whose subject it is: only <provider id>:<sub> is claimed.
		ada := s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "partner:2002")
		bare := s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "3003")
		if _, r := signInThrough(t, s, partner, "partner", "2002"); r.status != http.StatusOK ||
			!strings.Contains(r.body, "Signed in as <strong>partner:2002</strong>") {
			t.Errorf("partner's 2002 with a user partner:2002 made for it: %d\n%s", r.status, r.body)
		}
		if _, r := signInThrough(t, s, corp, "corp", "partner:2002"); r.status != http.StatusUnauthorized {
			t.Errorf("corp's subject partner:2002, the user claimed by partner's 2002: %d, want refused", r.status)
		}
		if _, r := signInThrough(t, s, partner, "partner", "3003"); r.status != http.StatusUnauthorized {
			t.Errorf("partner's 3003 with a user 3003 any issuer's subject may mean: %d, want refused", r.status)
		}
		if got := principalsNamed(t, s, "partner:2002"); len(got) != 1 || got[0] != ada {
			t.Errorf("users named partner:2002: %v, want only %s", got, ada)
		}
		if got := principalsNamed(t, s, "3003"); len(got) != 1 || got[0] != bare {
			t.Errorf("users named 3003: %v, want only %s", got, bare)
		}
	})
}

// TestOIDCSubPreProvisionedClaimedOnce (docs/security.md T-104): with one
// issuer linking by sub, a user an administrator made under a subject's
// name is claimed by that subject's first sign-in and by no other issuer
// afterwards, an instance administrator never, and deleting the user
// frees the identity for a new one.
func TestOIDCSubPreProvisionedClaimedOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	first, second := newIDP(t), newIDP(t)
	s := startServerIn(t, dir, oidcYAML(first, "sub", "default"))
	grace := s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")

	if _, r := signInThrough(t, s, first, "test", "grace"); r.status != http.StatusOK ||
		!strings.Contains(r.body, "Signed in as <strong>grace</strong>") {
		t.Fatalf("grace's first sign-in: %d\n%s", r.status, r.body)
	}
	if got := principalsNamed(t, s, "grace"); len(got) != 1 || got[0] != grace {
		t.Fatalf("users named grace: %v, want the one made for her, %s", got, grace)
	}
	if b, r := signInThrough(t, s, first, "test", "admin"); r.status != http.StatusUnauthorized || hasSession(s, b) {
		t.Errorf("the subject admin, the only provider: %d, want refused", r.status)
	}

	// The provider repointed at another issuer: its grace is someone else.
	// A user the configuration makes an instance administrator is no
	// more claimable than the one whose stored flag says so.
	ops := s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "ops")
	other := startServerIn(t, dir, oidcYAML(second, "sub", "default"), "instance_admins: ["+ops+"]\n")
	if b, r := signInThrough(t, other, second, "test", "grace"); r.status != http.StatusUnauthorized || hasSession(other, b) {
		t.Errorf("another issuer's grace: %d, want refused\n%s", r.status, r.body)
	}
	if b, r := signInThrough(t, other, second, "test", "ops"); r.status != http.StatusUnauthorized || hasSession(other, b) {
		t.Errorf("the subject ops, an instance administrator by configuration: %d, want refused", r.status)
	}

	// Deleting the user deletes the identity bound to it: grace's next
	// sign-in makes her a new user.
	s.sts(t, "principal", "delete", grace)
	if _, r := signInThrough(t, s, first, "test", "grace"); r.status != http.StatusOK {
		t.Errorf("grace after her user was deleted: %d, want a new user\n%s", r.status, r.body)
	}
	if got := principalsNamed(t, s, "grace"); len(got) != 1 || got[0] == grace {
		t.Errorf("users named grace after the deletion: %v, want one new user", got)
	}
}
