package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/storage"
)

// TestUserInfo is the judge of the UserInfo endpoint (OIDC Core §5.3;
// docs/security.md T-98): go-oidc finds it in discovery and reads the
// person's claims with the access token of the authorization-code flow,
// limited to its scopes; a token without openid, a forged, revoked or
// missing one, and the token of a person since disabled are refused with
// an RFC 6750 challenge.
func TestUserInfo(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	if got := provider.UserInfoEndpoint(); got != e.base+"/oauth2/userinfo" {
		t.Fatalf("userinfo_endpoint = %q", got)
	}
	tok := e.tokenFor(t, e.user, "openid", "email")
	info, err := provider.UserInfo(ctx, xoauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("go-oidc UserInfo: %v", err)
	}
	var claims struct {
		Name  string `json:"name"`
		OrgID string `json:"org_id"`
	}
	if err := info.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if info.Subject != e.user.ID || info.Email != e.user.Email || claims.OrgID != e.org || claims.Name != "" {
		t.Errorf("userinfo = sub %q email %q %+v; want the person's sub and email, no name without profile", info.Subject, info.Email, claims)
	}
	// With profile, the name too (POST works as GET).
	prof := e.tokenFor(t, e.user, "openid", "profile")
	code, body, _ := e.userinfo(t, http.MethodPost, "Bearer "+prof.AccessToken)
	if code != http.StatusOK || body["name"] != e.user.Name || body["email"] != nil {
		t.Errorf("userinfo with profile = %d %v; want the name and no email", code, body)
	}

	noOpenID := e.tokenFor(t, e.user, "notes.read")
	forged := tok.AccessToken[:strings.LastIndexByte(tok.AccessToken, '.')] + ".AAAA"
	for _, tc := range []struct {
		name, auth string
		status     int
		errCode    string
	}{
		{"no token", "", 401, ""},
		{"another scheme", "Basic " + tok.AccessToken, 401, ""},
		{"a forged token", "Bearer " + forged, 401, "invalid_token"},
		{"a refresh token", "Bearer " + tok.RefreshToken, 401, "invalid_token"},
		{"an ID token", "Bearer " + tok.Extra("id_token").(string), 401, "invalid_token"},
		{"a token without openid", "Bearer " + noOpenID.AccessToken, 403, "insufficient_scope"},
	} {
		code, _, www := e.userinfo(t, http.MethodGet, tc.auth)
		if code != tc.status || !strings.HasPrefix(www, "Bearer") || !strings.Contains(www, tc.errCode) {
			t.Errorf("%s: %d WWW-Authenticate %q, want %d with %q", tc.name, code, www, tc.status, tc.errCode)
		}
	}
	// RFC 6750 §3 and OIDC Core §5.3.3: the insufficient_scope challenge
	// names the scope that would do, so a client knows to ask for openid
	// (docs/security.md T-237).
	if _, _, www := e.userinfo(t, http.MethodGet, "Bearer "+noOpenID.AccessToken); !strings.Contains(www, `scope="openid"`) {
		t.Errorf("a token without openid: WWW-Authenticate %q, want scope=\"openid\"", www)
	}

	// Revoked by its client: refused.
	req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/revoke", strings.NewReader(url.Values{"token": {prof.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.conf.ID, e.secret)
	if code, _ := do(t, req); code != http.StatusOK {
		t.Fatalf("revoke = %d", code)
	}
	if code, _, _ := e.userinfo(t, http.MethodGet, "Bearer "+prof.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", code)
	}
	// The person disabled: refused.
	if err := e.store.UpdatePrincipal(ctx, e.user.ID, func(p storage.Principal) (storage.Principal, error) {
		p.Disabled = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UserInfo(ctx, xoauth2.StaticTokenSource(tok)); err == nil {
		t.Error("go-oidc UserInfo for a disabled person succeeded")
	}
}

// userinfo calls the endpoint with an Authorization header (none when
// empty) and returns the status, the JSON body and the challenge.
func (e *codeEnv) userinfo(t *testing.T, method, auth string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.base+"/oauth2/userinfo", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("userinfo Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, m, resp.Header.Get("WWW-Authenticate")
}
