package app_test

import (
	"net/http"
	"net/url"
	"testing"

	xoauth2 "golang.org/x/oauth2"
)

// TestAuthorizationErrorKeepsState: an error sent back to the client's
// redirect URI carries the request's state (RFC 6749 §4.1.2.1: REQUIRED
// when the request had one), also for a repeated parameter, the first
// thing judged after the client and redirect URI; a repeated state is
// not one the client sent, so none comes back.
func TestAuthorizationErrorKeepsState(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	e.signIn(t, e.user)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	u, _ := url.Parse(conf.AuthCodeURL("st-1", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())))
	q := u.Query()
	q.Add("scope", "email")
	u.RawQuery = q.Encode()
	resp, _ := mustGet(t, e.browser, u.String())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if got := loc.Query(); resp.StatusCode != http.StatusFound || got.Get("error") != "invalid_request" || got.Get("state") != "st-1" {
		t.Errorf("repeated scope: %d %v, want invalid_request with state st-1", resp.StatusCode, got)
	}
	q.Del("scope")
	q.Add("state", "st-2")
	u.RawQuery = q.Encode()
	resp, _ = mustGet(t, e.browser, u.String())
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if got := loc.Query(); got.Get("error") != "invalid_request" || got.Has("state") {
		t.Errorf("repeated state: %v, want invalid_request without state", got)
	}
}
