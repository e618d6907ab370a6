package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestGoogleOAuthTokenRequestedTokenType (docs/security.md T-53; adopted
// from review): Google's ExchangeOauthTokenRequest has no
// requested_token_type, but a form at /v1/oauthtoken naming one is read by
// the refresh grant: …:id_token is 400 invalid_request (it was 200 before
// the refresh grant read it), the refresh token left for the next request;
// …:jwt is 200.
func TestGoogleOAuthTokenRequestedTokenType(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	pepper := []byte(strings.Repeat("p", 32))
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "gcloud"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	auds := []string{stsIssuer, "https://api.example"}
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeRefreshToken}, Scopes: []string{"read"},
		Audiences: auds}
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	refresh := &Refresh{Store: e.store, Issuer: e.grant.Issuer, Pepper: pepper, Lifetime: 24 * time.Hour, Audiences: auds[1:]}
	e.handler.Grants = append(e.handler.Grants, refresh)
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = mux
	rt, err := refresh.Issue(ctx, &client, tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", ClientID: client.ID}, []string{"read"}, auds)
	if err != nil {
		t.Fatal(err)
	}
	post := func(kv ...string) (*http.Response, map[string]any) {
		form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Add(kv[i], kv[i+1])
		}
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleOAuthToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(client.ID, sec)
		return do(t, r)
	}
	resp, out := post("requested_token_type", oauth2.TokenTypeIDToken)
	if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || out["access_token"] != nil {
		t.Errorf("/v1/oauthtoken requesting …:id_token = %d %v, want 400 invalid_request", resp.StatusCode, out)
	}
	resp, out = post("requested_token_type", oauth2.TokenTypeJWT)
	if tok, _ := out["access_token"].(string); resp.StatusCode != http.StatusOK || tok == "" {
		t.Errorf("/v1/oauthtoken requesting …:jwt after a refused …:id_token = %d %v, want 200 with an access token", resp.StatusCode, out)
	}
}
