package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/googlests"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

type basicTransport struct{ id, secret string }

func (b basicTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.id, b.secret)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGoogleOAuthTokenJSON: /v1/oauthtoken takes the camelCase JSON body
// Google's generated client sends (judge: its Oauthtoken call, refresh
// grant); authorization_code with codeVerifier and redirectUri is parsed
// and refused as unsupported with a message saying why.
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
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeRefreshToken}, Scopes: []string{"read", "write"},
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

	rt, err := refresh.Issue(ctx, &client, tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", ClientID: client.ID}, []string{"read", "write"}, []string{stsIssuer})
	if err != nil {
		t.Fatal(err)
	}
	svc := &googlests.Service{BasePath: e.srv.URL + "/", Client: &http.Client{Transport: basicTransport{client.ID, sec}}}
	got, err := svc.Oauthtoken(ctx, &googlests.ExchangeOauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt, Scope: "read"})
	if err != nil {
		t.Fatalf("generated client's Oauthtoken: %v", err)
	}
	if got.AccessToken == "" || got.RefreshToken == "" || got.TokenType != "Bearer" || got.ExpiresIn <= 0 || got.Scope != "read" {
		t.Errorf("Oauthtoken = %+v", got)
	}
	c, err := e.verify.VerifyAccessToken(ctx, got.AccessToken, stsIssuer)
	if err != nil || c.Subject != sa.ID || time.Until(c.Expiry.Time()) > DefaultLifetime {
		t.Errorf("claims %+v %v", c, err)
	}

	// authorization_code: parsed (code, codeVerifier, redirectUri) and
	// refused until web sign-in exists.
	_, err = svc.Oauthtoken(ctx, &googlests.ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: "c-123",
		CodeVerifier: strings.Repeat("v", 43), RedirectUri: "http://127.0.0.1:8085/", ClientId: client.ID})
	if err == nil || !strings.Contains(err.Error(), `"unsupported_grant_type"`) || !strings.Contains(err.Error(), "sign-in") {
		t.Errorf("authorization_code: %v, want unsupported_grant_type saying web sign-in is missing", err)
	}
	for _, tc := range []struct {
		req  googlests.ExchangeOauthTokenRequest
		want string
	}{
		{googlests.ExchangeOauthTokenRequest{GrantType: "authorization_code", CodeVerifier: strings.Repeat("v", 43), RedirectUri: "http://127.0.0.1/"}, "code"},
		{googlests.ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: "c", CodeVerifier: "short", RedirectUri: "http://127.0.0.1/"}, "code_verifier"},
		{googlests.ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: "c", CodeVerifier: strings.Repeat("v", 43), RedirectUri: "not a uri"}, "redirect_uri"},
		{googlests.ExchangeOauthTokenRequest{GrantType: oauth2.GrantTypeTokenExchange}, "grant_type"},
	} {
		_, err := svc.Oauthtoken(ctx, &tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.req, err, tc.want)
		}
	}
}
