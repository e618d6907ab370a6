package app_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	xoauth2 "golang.org/x/oauth2"
)

// corsAnswer is what a browser reads from one CORS exchange.
type corsAnswer struct {
	status                        int
	allowOrigin, allowCredentials string
	allowMethods, allowHeaders    string
	vary                          []string
	body                          string
}

// corsDo sends method to path with an Origin header (and, for OPTIONS, a
// preflight's Access-Control-Request-* headers); hdr adds headers.
func (e *codeEnv) corsDo(t *testing.T, method, path, origin string, body url.Values, hdr map[string]string) corsAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	h := resp.Header
	return corsAnswer{status: resp.StatusCode, allowOrigin: h.Get("Access-Control-Allow-Origin"),
		allowCredentials: h.Get("Access-Control-Allow-Credentials"), allowMethods: h.Get("Access-Control-Allow-Methods"),
		allowHeaders: h.Get("Access-Control-Allow-Headers"), vary: h.Values("Vary"), body: string(b)}
}

func (a corsAnswer) varies() bool {
	for _, v := range a.vary {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return true
			}
		}
	}
	return false
}

func hasToken(list, want string) bool {
	return slices.ContainsFunc(strings.Split(list, ","), func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), want) })
}

// preflight is a browser's OPTIONS before a POST with headers.
func (e *codeEnv) preflight(t *testing.T, path, origin, method, headers string) corsAnswer {
	t.Helper()
	return e.corsDo(t, http.MethodOptions, path, origin, nil, map[string]string{
		"Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})
}

// TestCORS is the judge of cross-origin access (docs/api.md,
// "Cross-origin requests"; docs/security.md T-110): a single-page
// application on another origin reads discovery and the JWKS (any
// origin, no credentials); the token, UserInfo and revocation endpoints
// answer the preflight for any origin (it cannot name the client), and
// their answers are readable only at an origin of one of the redirect
// URIs of the client the request identifies; any other origin,
// introspection, the browser pages and the admin API get no CORS at all,
// and nothing ever allows credentials. TestCORSReads shows that neither
// the preflight nor the answer reads the clients table to decide.
func TestCORS(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	pubOrigin := "http://127.0.0.1:1" // e.public's redirect URI's origin
	confOrigin := e.callback.URL      // e.conf's
	evil := "https://evil.example"    // registered for no client
	const reqHeaders = "authorization, content-type"

	t.Run("public documents", func(t *testing.T) {
		for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/.well-known/jwks.json"} {
			a := e.corsDo(t, http.MethodGet, p, evil, nil, nil)
			if a.status != http.StatusOK || a.allowOrigin != "*" || a.allowCredentials != "" {
				t.Errorf("GET %s from %s = %d Allow-Origin %q Allow-Credentials %q, want 200 * and no credentials", p, evil, a.status, a.allowOrigin, a.allowCredentials)
			}
			a = e.preflight(t, p, evil, http.MethodGet, "")
			if a.status >= 300 || a.allowOrigin != "*" || !hasToken(a.allowMethods, "GET") || a.allowCredentials != "" {
				t.Errorf("preflight %s = %d Allow-Origin %q Allow-Methods %q, want 2xx * GET", p, a.status, a.allowOrigin, a.allowMethods)
			}
		}
	})

	t.Run("preflight of the client endpoints", func(t *testing.T) {
		for _, p := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/userinfo"} {
			// A preflight carries no body, so no client: it is answered
			// for any origin, registered or not; reading the answer is
			// what the client's origins gate (the subtests below).
			for _, o := range []string{pubOrigin, confOrigin, evil} {
				a := e.preflight(t, p, o, http.MethodPost, reqHeaders)
				if a.status >= 300 || a.allowOrigin != o || !hasToken(a.allowMethods, "POST") ||
					!hasToken(a.allowHeaders, "Authorization") || !hasToken(a.allowHeaders, "Content-Type") || !a.varies() || a.allowCredentials != "" {
					t.Errorf("preflight %s from %s = %d %+v, want 2xx, Allow-Origin %s, POST, Authorization and Content-Type, Vary: Origin, no credentials", p, o, a.status, a, o)
				}
			}
			for _, o := range []string{"null", "https://evil.example/path", "file://"} {
				if a := e.preflight(t, p, o, http.MethodPost, reqHeaders); a.allowOrigin != "" || a.allowMethods != "" || !a.varies() {
					t.Errorf("preflight %s from Origin %q (no http(s) origin) = %d %+v, want no CORS headers and Vary: Origin", p, o, a.status, a)
				}
			}
		}
		if a := e.preflight(t, "/oauth2/userinfo", confOrigin, http.MethodGet, "authorization"); a.allowOrigin != confOrigin || !hasToken(a.allowMethods, "GET") {
			t.Errorf("preflight GET /oauth2/userinfo = %+v, want GET allowed", a)
		}
	})

	t.Run("token endpoint", func(t *testing.T) {
		// The public client redeems its code from its own origin: readable.
		e.signIn(t, e.user)
		pconf := e.oauthConfig(e.public, "", "http://127.0.0.1:1/cb")
		pconf.Scopes = []string{"openid"}
		verifier := xoauth2.GenerateVerifier()
		code := e.publicCode(t, pconf, verifier)
		redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {e.public.ID}, "code": {code},
			"redirect_uri": {"http://127.0.0.1:1/cb"}, "code_verifier": {verifier}}
		// From an origin of another client: the code is spent, the answer
		// unreadable there.
		bad := url.Values{}
		for k, v := range redeem {
			bad[k] = v
		}
		bad.Set("code_verifier", xoauth2.GenerateVerifier())
		if a := e.corsDo(t, http.MethodPost, "/oauth2/token", confOrigin, bad, nil); a.allowOrigin != "" || !a.varies() {
			t.Errorf("token answer to the public client from another client's origin: Allow-Origin %q Vary %v, want none and Vary: Origin", a.allowOrigin, a.vary)
		}
		code2 := e.publicCode(t, pconf, verifier)
		redeem.Set("code", code2)
		a := e.corsDo(t, http.MethodPost, "/oauth2/token", pubOrigin, redeem, nil)
		if a.status != http.StatusOK || a.allowOrigin != pubOrigin || !a.varies() || a.allowCredentials != "" {
			t.Errorf("public client's redemption from its origin = %d Allow-Origin %q Vary %v Allow-Credentials %q, want 200 with its origin",
				a.status, a.allowOrigin, a.vary, a.allowCredentials)
		}
		// A refusal to the identified client is readable too, so the
		// application can show it.
		a = e.corsDo(t, http.MethodPost, "/oauth2/token", pubOrigin, redeem, nil)
		if a.status != http.StatusBadRequest || a.allowOrigin != pubOrigin {
			t.Errorf("second redemption from its origin = %d Allow-Origin %q, want 400 readable", a.status, a.allowOrigin)
		}
		// No client identified: no CORS.
		a = e.corsDo(t, http.MethodPost, "/oauth2/token", pubOrigin, url.Values{"grant_type": {"authorization_code"}}, nil)
		if a.allowOrigin != "" {
			t.Errorf("token answer without a client = Allow-Origin %q, want none", a.allowOrigin)
		}
	})

	t.Run("userinfo and revocation", func(t *testing.T) {
		tok := e.tokenFor(t, e.user, "openid", "email")
		auth := map[string]string{"Authorization": "Bearer " + tok.AccessToken}
		if a := e.corsDo(t, http.MethodGet, "/oauth2/userinfo", confOrigin, nil, auth); a.status != 200 || a.allowOrigin != confOrigin || !a.varies() {
			t.Errorf("userinfo from the token's client's origin = %d Allow-Origin %q, want 200 readable", a.status, a.allowOrigin)
		}
		if a := e.corsDo(t, http.MethodGet, "/oauth2/userinfo", pubOrigin, nil, auth); a.allowOrigin != "" || !a.varies() {
			t.Errorf("userinfo from another client's origin = Allow-Origin %q, want none", a.allowOrigin)
		}
		basic := map[string]string{"Authorization": "Basic " + basicAuth(e.conf.ID, e.secret)}
		if a := e.corsDo(t, http.MethodPost, "/oauth2/revoke", evil, url.Values{"token": {tok.RefreshToken}}, basic); a.allowOrigin != "" {
			t.Errorf("revoke from an unregistered origin = Allow-Origin %q, want none", a.allowOrigin)
		}
		if a := e.corsDo(t, http.MethodPost, "/oauth2/revoke", confOrigin, url.Values{"token": {tok.AccessToken}}, basic); a.status != 200 || a.allowOrigin != confOrigin {
			t.Errorf("revoke from the client's origin = %d Allow-Origin %q, want 200 readable", a.status, a.allowOrigin)
		}
	})

	t.Run("no CORS elsewhere", func(t *testing.T) {
		for _, p := range []string{"/oauth2/introspect", "/oauth2/authorize", "/oauth2/logout", "/login", "/tokens",
			"/sts.v1.ClientService/ListClients", "/gitpod.v1.IdentityService/GetAuthenticatedIdentity", "/v1/token"} {
			for _, o := range []string{confOrigin, evil} {
				if a := e.preflight(t, p, o, http.MethodPost, reqHeaders); a.allowOrigin != "" || a.allowCredentials != "" || a.allowMethods != "" {
					t.Errorf("preflight %s from %s = %d %+v, want no CORS", p, o, a.status, a)
				}
			}
		}
		basic := map[string]string{"Authorization": "Basic " + basicAuth(e.conf.ID, e.secret)}
		if a := e.corsDo(t, http.MethodPost, "/oauth2/introspect", confOrigin, url.Values{"token": {"x"}}, basic); a.allowOrigin != "" {
			t.Errorf("introspection from the client's origin = Allow-Origin %q, want none (confidential clients only)", a.allowOrigin)
		}
		if a := e.corsDo(t, http.MethodGet, "/oauth2/authorize", confOrigin, nil, nil); a.allowOrigin != "" {
			t.Errorf("GET /oauth2/authorize = Allow-Origin %q, want none", a.allowOrigin)
		}
	})
}

// basicAuth is an RFC 6749 §2.3.1 client_secret_basic credential.
func basicAuth(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// publicCode runs the authorization request of the public client (whose
// redirect URI nothing serves), approving when asked, and returns the code.
func (e *codeEnv) publicCode(t *testing.T, conf *xoauth2.Config, verifier string) string {
	t.Helper()
	resp, page := mustGet(t, e.browser, conf.AuthCodeURL(randText(t), xoauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode == http.StatusOK {
		form := consentForm(t, page)
		form.Set("sts_consent_decision", "approve")
		resp, _ = e.post(t, "/oauth2/authorize", form, nil)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code for the public client: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return code
}
