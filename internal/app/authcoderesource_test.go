package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
)

// jwtAudience is a JWT's aud as a list (a string or an array), read
// without verifying it.
func jwtAudience(t *testing.T, jwt string) []string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Aud json.RawMessage }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(c.Aud, &many); err != nil {
		t.Fatalf("aud %s: %v", c.Aud, err)
	}
	return many
}

// withResources is an authorization URL with a resource parameter for
// each of resources added (x/oauth2's SetAuthURLParam sets one value).
func withResources(u string, resources ...string) string {
	for _, r := range resources {
		u += "&resource=" + url.QueryEscape(r)
	}
	return u
}

// TestAuthorizationCodeResource (docs/security.md T-190): an MCP client
// sends resource (RFC 8707 §2.1) with its authorization request and again
// with its token requests. The code covers exactly the resources asked
// at /oauth2/authorize, through the consent screen and remembered consent
// alike, so the redemption for one of them is answered (x/oauth2 as the
// client), the access token is for those resources, and the refresh
// family covers them. A resource the client may not ask for, or one that
// is no absolute URI, is an invalid_target error sent to the client, and
// no code. Before, resource was ignored at /oauth2/authorize: the code
// was for the client's first audience, and its redemption for the
// resource asked was refused invalid_target.
func TestAuthorizationCodeResource(t *testing.T) {
	t.Parallel()
	const notes, mcp, files = "https://notes.example", "https://mcp.example/mcp", "https://files.example"
	e := newCodeEnv(t)
	ctx := t.Context()
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	c, sec, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: e.conf.PrincipalID,
		Name: "MCP client", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"openid", "email"}, Audiences: []string{notes, mcp, files}, RedirectURIs: []string{e.callback.URL + "/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	conf := e.oauthConfig(c, sec, e.callback.URL+"/cb")
	e.signIn(t, e.user)
	resource := func(r string) xoauth2.AuthCodeOption { return xoauth2.SetAuthURLParam("resource", r) }

	// Through the consent screen, for the MCP server alone; redeemed and
	// refreshed naming it, as MCP clients do.
	verifier := xoauth2.GenerateVerifier()
	code := e.approve(t, conf, verifier, resource(mcp))
	tok, err := conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier), resource(mcp))
	if err != nil {
		t.Fatalf("code asked for %s, redeemed for it: %v", mcp, err)
	}
	if aud := jwtAudience(t, tok.AccessToken); !slices.Equal(aud, []string{mcp}) || tok.RefreshToken == "" {
		t.Fatalf("aud %v, refresh token %t; want [%s] and a refresh token", aud, tok.RefreshToken != "", mcp)
	}
	refreshed, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if aud := jwtAudience(t, refreshed.AccessToken); !slices.Equal(aud, []string{mcp}) {
		t.Errorf("refreshed aud %v, want [%s]", aud, mcp)
	}
	st, m := e.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken},
		"resource": {notes}}, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":"+sec))})
	if st.StatusCode != http.StatusBadRequest || !strings.Contains(m, oauth2.ErrorInvalidTarget) {
		t.Errorf("refresh for %s, which the code did not cover = %d %s, want invalid_target", notes, st.StatusCode, m)
	}

	// The consent screen lists no resource: consent is to scopes, and is
	// remembered for them alone (a resource is one of the client's own
	// audiences), so a list would claim a consent never kept.
	resp, body := mustGet(t, e.browser, withResources(conf.AuthCodeURL(randText(t), xoauth2.S256ChallengeOption(verifier),
		xoauth2.SetAuthURLParam("prompt", "consent")), files))
	if !strings.Contains(body, "sts_consent_csrf") || strings.Contains(body, "<code>"+files+"</code>") {
		t.Errorf("consent screen (%d) lists the resource %s, which a remembered consent does not record", resp.StatusCode, files)
	}

	// Remembered consent, two resources: the redemption may narrow to
	// one; the family covers both.
	verifier, state := xoauth2.GenerateVerifier(), randText(t)
	resp, body = mustGet(t, e.browser, withResources(conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier)), mcp, files))
	code = e.codeFrom(t, resp, body, state)
	tok, err = conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier), resource(files))
	if err != nil {
		t.Fatalf("code asked for %s and %s, redeemed for %s: %v", mcp, files, files, err)
	}
	if aud := jwtAudience(t, tok.AccessToken); !slices.Equal(aud, []string{files}) {
		t.Errorf("aud %v, want [%s]", aud, files)
	}
	refreshed, err = conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if aud := jwtAudience(t, refreshed.AccessToken); !slices.Equal(aud, []string{mcp, files}) {
		t.Errorf("refreshed aud %v, want the code's [%s %s]", aud, mcp, files)
	}

	// Without resource: the client's first audience, as before.
	verifier = xoauth2.GenerateVerifier()
	code = e.authorize(t, conf, verifier)
	if tok, err = conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	if aud := jwtAudience(t, tok.AccessToken); !slices.Equal(aud, []string{notes}) {
		t.Errorf("no resource asked: aud %v, want [%s]", aud, notes)
	}

	// An empty resource is omitted, as at the token endpoint (RFC 6749
	// §3.1): the code is for the resources sent.
	for _, q := range [][]string{{""}, {mcp, ""}} {
		verifier, state := xoauth2.GenerateVerifier(), randText(t)
		resp, body := mustGet(t, e.browser, withResources(conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier)), q...))
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc != nil && loc.Query().Has("error") {
			t.Fatalf("resource %q: error=%s (%s), want it omitted", q, loc.Query().Get("error"), loc.Query().Get("error_description"))
		}
		code := e.codeFrom(t, resp, body, state)
		if tok, err = conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("resource %q: %v", q, err)
		}
		want := []string{notes}
		if len(q) > 1 {
			want = []string{mcp}
		}
		if aud := jwtAudience(t, tok.AccessToken); !slices.Equal(aud, want) {
			t.Errorf("resource %q: aud %v, want %v", q, aud, want)
		}
	}

	// A resource the client may not ask for, or not an absolute URI
	// without a fragment: invalid_target at the client, no code.
	for _, bad := range []string{"https://outside.example", "mcp.example/mcp", mcp + "#x"} {
		state := randText(t)
		resp, body := mustGet(t, e.browser, withResources(conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())), mcp, bad))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.callback.URL) ||
			loc.Query().Get("error") != oauth2.ErrorInvalidTarget || loc.Query().Get("state") != state || loc.Query().Has("code") {
			t.Errorf("resource %q = %d %q Location %q, want invalid_target at the callback with the state and no code", bad, resp.StatusCode, body, loc)
		}
	}
}
