package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
)

// TestAuthorizationCodeLoopbackRedirect (RFC 8252 §7.3, docs/security.md
// T-73): a native app registers a loopback IP literal redirect URI
// (http://127.0.0.1/…, http://[::1]/…) and listens on whatever port it
// gets, so the request is accepted with any port, and everything else
// (scheme, literal, path, query) still matches character for character;
// localhost is not an IP literal and stays exact. The code is redeemed
// with the redirect URI of its authorization request, port included.
func TestAuthorizationCodeLoopbackRedirect(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	native, _, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: e.public.PrincipalID,
		Name: "native", AuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid"},
		Audiences: []string{"https://cli.example"}, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]:9/cb?app=1", "http://localhost:8080/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	e.signIn(t, e.user)
	conf := e.oauthConfig(native, "", "")
	conf.Scopes = []string{"openid"}

	// authorize runs the request for redirect and returns the code, or ""
	// and the answer when there is no redirect to redirect.
	authorize := func(t *testing.T, redirect, verifier string) (string, *http.Response) {
		t.Helper()
		c := *conf
		c.RedirectURL = redirect
		resp, page := mustGet(t, e.browser, c.AuthCodeURL("st", xoauth2.S256ChallengeOption(verifier)))
		if resp.StatusCode == http.StatusOK {
			form := consentForm(t, page)
			form.Set("sts_consent_decision", "approve")
			resp, _ = e.post(t, "/oauth2/authorize", form, nil)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirect) {
			return "", resp
		}
		return loc.Query().Get("code"), resp
	}
	for _, good := range []string{"http://127.0.0.1/cb", "http://127.0.0.1:53177/cb", "http://127.0.0.1:1/cb",
		"http://[::1]:9/cb?app=1", "http://[::1]:61000/cb?app=1", "http://[::1]/cb?app=1", "http://localhost:8080/cb"} {
		v := xoauth2.GenerateVerifier()
		code, resp := authorize(t, good, v)
		if code == "" {
			t.Errorf("redirect_uri %q: %d Location %q, want a code sent there", good, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		if st, m := e.redeem(t, native, "", url.Values{"code": {code}, "code_verifier": {v}, "redirect_uri": {good}}); st != http.StatusOK {
			t.Errorf("redeeming with the request's redirect_uri %q = %d %v", good, st, m)
		}
	}
	for _, bad := range []string{
		"http://127.0.0.1:53177/cb/x", "http://127.0.0.1:53177/cb?x=1", "http://127.0.0.1:53177/CB", "https://127.0.0.1:53177/cb",
		"http://127.0.0.1:53177@evil.example/cb", "http://127.0.0.1:/cb", "http://127.0.0.1:99999/cb", "http://127.0.0.1:53177#cb",
		"http://127.0.0.2:53177/cb", "http://[::1]:53177/cb", "http://[::1]:61000/cb?app=2", "http://127.0.0.1.evil.example/cb",
		"http://localhost:9090/cb", "http://localhost/cb",
	} {
		if code, resp := authorize(t, bad, xoauth2.GenerateVerifier()); code != "" || resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %q: %d Location %q, want an error page and no redirect", bad, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The any-port rule is for native apps, public clients (RFC 8252 §7.3,
	// docs/security.md T-170): a confidential web client's loopback
	// redirect URI matches exactly.
	web, webSecret, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: e.public.PrincipalID,
		Name: "web", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid"},
		Audiences: []string{"https://cli.example"}, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]:8443/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	webConf := e.oauthConfig(web, webSecret, "")
	webConf.Scopes = []string{"openid"}
	for redirect, want := range map[string]bool{"http://127.0.0.1/cb": true, "http://[::1]:8443/cb": true,
		"http://127.0.0.1:53177/cb": false, "http://[::1]/cb": false, "http://[::1]:61000/cb": false} {
		c := *webConf
		c.RedirectURL = redirect
		resp, page := mustGet(t, e.browser, c.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())))
		if got := resp.StatusCode == http.StatusOK && strings.Contains(page, "decision"); got != want || resp.Header.Get("Location") != "" {
			t.Errorf("confidential client, redirect_uri %q: %d Location %q, want accepted %v and no redirect", redirect, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// post_logout_redirect_uri: the same rule, any port for the public
	// client's loopback literal, none for the confidential client's.
	for _, tc := range []struct {
		client, uri string
		want        int
	}{
		{native.ID, "http://127.0.0.1/cb", http.StatusOK}, {native.ID, "http://127.0.0.1:53177/cb", http.StatusOK},
		{native.ID, "http://[::1]:61000/cb?app=1", http.StatusOK}, {native.ID, "http://127.0.0.1:53177/cb/x", http.StatusBadRequest},
		{native.ID, "http://localhost:9090/cb", http.StatusBadRequest},
		{web.ID, "http://127.0.0.1/cb", http.StatusOK}, {web.ID, "http://127.0.0.1:53177/cb", http.StatusBadRequest},
		{web.ID, "http://[::1]:61000/cb", http.StatusBadRequest},
	} {
		resp, _ := mustGet(t, e.browser, e.base+"/oauth2/logout?"+url.Values{"client_id": {tc.client}, "post_logout_redirect_uri": {tc.uri}}.Encode())
		if resp.StatusCode != tc.want || resp.Header.Get("Location") != "" {
			t.Errorf("logout of client %s to %q: %d Location %q, want %d", tc.client, tc.uri, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
	// The token endpoint compares with the authorization request's, port
	// and all, not with the registered one.
	v := xoauth2.GenerateVerifier()
	code, _ := authorize(t, "http://127.0.0.1:53177/cb", v)
	if st, m := e.redeem(t, native, "", url.Values{"code": {code}, "code_verifier": {v}, "redirect_uri": {"http://127.0.0.1/cb"}}); st != http.StatusBadRequest || m["error"] != oauth2.ErrorInvalidGrant {
		t.Errorf("redeeming with another port = %d %v, want 400 invalid_grant", st, m)
	}
}

// TestAuthorizationCodePrivateUseScheme (RFC 8252 §7.1): a native app,
// a public client, registers a private-use URI scheme redirect of a
// reverse domain name (com.example.app:/oauth2/cb) and gets its code
// there, redeemed with x/oauth2's parameters; a confidential client may
// not register one, nor may anyone a scheme that is not a reverse domain
// name or one with a host.
func TestAuthorizationCodePrivateUseScheme(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "com.example.app:/oauth2/cb"
	in := clients.CreateInput{OrgID: e.org, PrincipalID: e.public.PrincipalID,
		Name: "native", AuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid"},
		Audiences: []string{"https://cli.example"}, RedirectURIs: []string{redirect}}
	native, _, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, in)
	if err != nil {
		t.Fatalf("a public client with %q: %v", redirect, err)
	}
	for _, bad := range []struct {
		method, uri string
	}{
		{oauth2.AuthMethodClientSecretBasic, redirect}, {oauth2.AuthMethodNone, "myapp:/cb"}, {oauth2.AuthMethodNone, "com.example.app://host/cb"},
		{oauth2.AuthMethodNone, "com.example.app:cb"}, {oauth2.AuthMethodNone, "com.example.app:/cb#x"}, {oauth2.AuthMethodNone, "java.script:/x y"},
	} {
		b := in
		b.AuthMethod, b.RedirectURIs = bad.method, []string{bad.uri}
		if _, _, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, b); err == nil || !strings.Contains(err.Error(), "redirect_uris") {
			t.Errorf("client %s with %q: %v, want an error naming redirect_uris", bad.method, bad.uri, err)
		}
	}
	e.signIn(t, e.user)
	conf := e.oauthConfig(native, "", redirect)
	conf.Scopes = []string{"openid"}
	v := xoauth2.GenerateVerifier()
	resp, page := mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(v)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize with %q = %d %q, want the consent screen", redirect, resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' com.example.app:") {
		t.Errorf("consent Content-Security-Policy %q, want form-action to admit com.example.app:", csp)
	}
	form := consentForm(t, page)
	form.Set("sts_consent_decision", "approve")
	resp, _ = e.post(t, "/oauth2/authorize", form, nil)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("code") == "" {
		t.Fatalf("approve = %d Location %q, want a redirect to %s with a code", resp.StatusCode, resp.Header.Get("Location"), redirect)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), xoauth2.VerifierOption(v))
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("x/oauth2 Exchange = %+v, %v", tok, err)
	}
}
