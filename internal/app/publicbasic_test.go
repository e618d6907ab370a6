package app_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/oauth2"
)

// TestPublicClientBasicEmptyPassword (RFC 6749 §2.3.1, RFC 7009 §2.1):
// a public client that sends HTTP Basic with its client_id and an empty
// password, as golang.org/x/oauth2's AuthStyleInHeader does for a client
// without a secret, is identified exactly as one sending client_id in the
// body: it redeems its code (x/oauth2 Exchange is the judge) and revokes
// its token. A confidential client with an empty password, Basic with
// neither name nor password, and a body client_id that differs from the
// header's are still refused.
func TestPublicClientBasicEmptyPassword(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	e.signIn(t, e.user)
	conf := e.oauthConfig(e.public, "", "http://127.0.0.1:1/cb")
	conf.Scopes = []string{"openid"}
	conf.Endpoint.AuthStyle = xoauth2.AuthStyleInHeader
	verifier, state := xoauth2.GenerateVerifier(), randText(t)
	resp, page := mustGet(t, e.browser, conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode == http.StatusOK {
		form := consentForm(t, page)
		form.Set("sts_consent_decision", "approve")
		resp, _ = e.post(t, "/oauth2/authorize", form, nil)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d to %q, want a code", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange, Basic with an empty password: %v", err)
	}

	userinfo := func() int {
		req, _ := http.NewRequest(http.MethodGet, e.base+"/oauth2/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		st, _ := do(t, req)
		return st
	}
	if st := userinfo(); st != http.StatusOK {
		t.Fatalf("userinfo before revocation = %d", st)
	}
	revoke := func(authorization string, form url.Values) (int, map[string]any) {
		form.Set("token", tok.AccessToken)
		req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", authorization)
		return do(t, req)
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	// Refusals first: the token must still work after each.
	for _, tc := range []struct {
		name, authorization string
		form                url.Values
		status              int
		code                string
	}{
		{"a confidential client with an empty password", basic(e.conf.ID, ""), url.Values{}, http.StatusUnauthorized, oauth2.ErrorInvalidClient},
		{"an unknown client with an empty password", basic("nobody", ""), url.Values{}, http.StatusUnauthorized, oauth2.ErrorInvalidClient},
		{"neither name nor password", basic("", ""), url.Values{}, http.StatusUnauthorized, oauth2.ErrorInvalidClient},
		{"a body client_id that differs", basic(e.public.ID, ""), url.Values{"client_id": {e.conf.ID}}, http.StatusBadRequest, oauth2.ErrorInvalidRequest},
	} {
		if st, m := revoke(tc.authorization, tc.form); st != tc.status || m["error"] != tc.code {
			t.Errorf("revoke, %s = %d %v, want %d %s", tc.name, st, m, tc.status, tc.code)
		}
		if st := userinfo(); st != http.StatusOK {
			t.Fatalf("after revoke, %s: userinfo = %d, want the token untouched", tc.name, st)
		}
	}
	// The token endpoint refuses a confidential client's empty password.
	confConf := e.oauthConfig(e.conf, "", e.callback.URL+"/cb")
	confConf.Endpoint.AuthStyle = xoauth2.AuthStyleInHeader
	_, err = confConf.Exchange(ctx, "sts_ac_x", xoauth2.VerifierOption(verifier))
	if re, ok := errors.AsType[*xoauth2.RetrieveError](err); !ok || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != oauth2.ErrorInvalidClient {
		t.Errorf("token endpoint, a confidential client with an empty password: %v, want 401 invalid_client", err)
	}

	if st, m := revoke(basic(url.QueryEscape(e.public.ID), ""), url.Values{}); st != http.StatusOK {
		t.Fatalf("revoke, the public client by Basic with an empty password = %d %v, want 200", st, m)
	}
	if st := userinfo(); st != http.StatusUnauthorized {
		t.Errorf("userinfo after revocation = %d, want 401", st)
	}
}
