package grants

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// oauthTokenRequest is the camelCase JSON body of Google's
// ExchangeOauthTokenRequest (field names from its discovery document).
type oauthTokenRequest struct {
	ClientID     string `json:"clientId,omitempty"`
	Code         string `json:"code,omitempty"`
	CodeVerifier string `json:"codeVerifier,omitempty"`
	GrantType    string `json:"grantType,omitempty"`
	RedirectURI  string `json:"redirectUri,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

type oauthTokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

// postOAuthToken POSTs req as JSON to /v1/oauthtoken with the client's
// HTTP Basic credentials; a non-2xx answer is an error carrying the body.
func postOAuthToken(t *testing.T, base, id, secret string, req oauthTokenRequest) (*oauthTokenResponse, error) {
	t.Helper()
	body, _ := json.Marshal(req)
	r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/oauthtoken?alt=json&prettyPrint=false", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var out oauthTokenResponse
	return &out, json.Unmarshal(raw, &out)
}

// TestGoogleOAuthTokenJSON: /v1/oauthtoken takes the camelCase JSON body of
// Google's generated client (refresh grant, which keeps the refresh token);
// authorization_code with
// codeVerifier and redirectUri is parsed and refused as unsupported with a
// message saying why. Google's generated client itself judges the same
// calls against a real server in compat/googleapi.
func TestGoogleOAuthTokenJSON(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	pepper := []byte(strings.Repeat("p", 32))
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "gcloud"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}, Scopes: []string{"read", "write"},
		Audiences: []string{stsIssuer}} // the refresh family's audience must be on the client's allowlist
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	refresh := &Refresh{Store: e.store, Issuer: e.grant.Issuer, Pepper: pepper}
	e.handler.Grants = append(e.handler.Grants, refresh)
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = mux

	rt, err := refresh.Issue(ctx, oauth2.GrantTypeAuthorizationCode, &client, tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", ClientID: client.ID}, []string{"read", "write"}, []string{stsIssuer})
	if err != nil {
		t.Fatal(err)
	}
	got, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt, Scope: "read"})
	if err != nil {
		t.Fatalf("/v1/oauthtoken refresh: %v", err)
	}
	// No refresh_token: at /v1/oauthtoken a confidential client's refresh
	// token does not rotate, as Google's (docs/security.md T-112).
	if got.AccessToken == "" || got.RefreshToken != "" || got.TokenType != "Bearer" || got.ExpiresIn <= 0 || got.Scope != "read" {
		t.Errorf("Oauthtoken = %+v", got)
	}
	if again, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt}); err != nil || again.AccessToken == "" {
		t.Errorf("the same refresh token again: %+v %v", again, err)
	}
	c, err := e.verify.VerifyAccessToken(ctx, got.AccessToken, stsIssuer)
	if err != nil || c.Subject != sa.ID || time.Until(c.Expiry.Time()) > DefaultLifetime {
		t.Errorf("claims %+v %v", c, err)
	}

	// authorization_code: parsed (code, codeVerifier, redirectUri) and
	// refused by a handler without the grant (serve has it: internal/app
	// TestAuthorizationCodeFlow).
	_, err = postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: "authorization_code", Code: "c-123",
		CodeVerifier: strings.Repeat("v", 43), RedirectURI: "http://127.0.0.1:8085/", ClientID: client.ID})
	if err == nil || !strings.Contains(err.Error(), `"unsupported_grant_type"`) || !strings.Contains(err.Error(), "sign-in") {
		t.Errorf("authorization_code: %v, want unsupported_grant_type saying web sign-in is missing", err)
	}
	for _, tc := range []struct {
		req  oauthTokenRequest
		want string
	}{
		{oauthTokenRequest{GrantType: "authorization_code", CodeVerifier: strings.Repeat("v", 43), RedirectURI: "http://127.0.0.1/"}, "code"},
		{oauthTokenRequest{GrantType: "authorization_code", Code: "c", CodeVerifier: "short", RedirectURI: "http://127.0.0.1/"}, "code_verifier"},
		{oauthTokenRequest{GrantType: "authorization_code", Code: "c", CodeVerifier: strings.Repeat("v", 43), RedirectURI: "not a uri"}, "redirect_uri"},
		{oauthTokenRequest{GrantType: oauth2.GrantTypeTokenExchange}, "grant_type"},
	} {
		_, err := postOAuthToken(t, e.srv.URL, client.ID, sec, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.req, err, tc.want)
		}
	}
}
