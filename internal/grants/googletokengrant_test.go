package grants

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	googlecreds "golang.org/x/oauth2/google"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestGoogleTokenPathTakesTokenExchangeOnly (docs/security.md T-112):
// /v1/token is Google STS's token exchange, whose grantType must be
// token exchange. It also served refresh_token as /oauth2/token does,
// rotating, so an external_account_authorized_user file whose token_url
// named /v1/token (the path of every external_account file) worked in one
// process and, once a second process started from the same file refreshed
// past the retry window, was a reuse that revoked the family for all of
// them. Any other grant type is refused there now, saying where a refresh
// goes, before the refresh token is looked at; the file pointed at
// /v1/oauthtoken works. The judge is golang.org/x/oauth2/google.
func TestGoogleTokenPathTakesTokenExchangeOnly(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	e.handler.OmitReason = true // serve's default: the description alone must tell
	pepper := []byte(strings.Repeat("p", 32))
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "gcloud"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeRefreshToken, oauth2.GrantTypeJWTBearer},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}}
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	refresh := &Refresh{Store: e.store, Issuer: e.grant.Issuer, Pepper: pepper, AccessLifetime: 5 * time.Second, Lifetime: 24 * time.Hour}
	e.handler.Grants = append(e.handler.Grants, refresh, &JWTBearer{TokenExchange: e.grant})
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = mux

	rt, err := refresh.Issue(ctx, oauth2.GrantTypeJWTBearer, &client, tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", ClientID: client.ID}, []string{"read"}, []string{stsIssuer})
	if err != nil {
		t.Fatal(err)
	}
	file := func(path string) []byte {
		b, _ := json.Marshal(map[string]string{
			"type": "external_account_authorized_user", "client_id": client.ID, "client_secret": sec,
			"refresh_token": rt, "token_url": e.srv.URL + path,
		})
		return b
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		stored, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(pepper, rt))
		if err != nil || stored.Revoked || !stored.RotatedAt.IsZero() {
			t.Fatalf("the file's refresh token: %+v %v, want it stored, not rotated, not revoked", stored, err)
		}
	}

	t.Run("T-112 an authorized-user file naming /v1/token", func(t *testing.T) {
		creds, err := googlecreds.CredentialsFromJSON(ctx, file(PathGoogleToken), cloudPlatform)
		if err != nil {
			t.Fatal(err)
		}
		_, err = creds.TokenSource.Token()
		if err == nil || !strings.Contains(err.Error(), "status code 400") || !strings.Contains(err.Error(), `"unsupported_grant_type"`) ||
			!strings.Contains(err.Error(), PathGoogleOAuthToken) {
			t.Errorf("Token() = %v, want 400 unsupported_grant_type pointing at %s", err, PathGoogleOAuthToken)
		}
		unchanged(t)
	})
	for _, tc := range []struct{ name, ctype, body string }{
		{"T-112 refresh_token in Google's JSON body", "application/json", `{"grantType":"refresh_token"}`},
		{"T-112 jwt-bearer", "application/x-www-form-urlencoded", "grant_type=" + oauth2.GrantTypeJWTBearer + "&assertion=" +
			e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1")) + "&pool=ci"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ctype)
			r.SetBasicAuth(client.ID, sec)
			resp, out := do(t, r)
			d, _ := out["error_description"].(string)
			if resp.StatusCode != 400 || out["error"] != oauth2.ErrorUnsupportedGrantType || !strings.Contains(d, "token exchange") || out["access_token"] != nil {
				t.Errorf("got %d %v %q, want 400 unsupported_grant_type saying /v1/token takes token exchange", resp.StatusCode, out["error"], d)
			}
			unchanged(t)
		})
	}
	t.Run("T-112 the same file naming /v1/oauthtoken", func(t *testing.T) {
		creds, err := googlecreds.CredentialsFromJSON(ctx, file(PathGoogleOAuthToken), cloudPlatform)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := creds.TokenSource.Token()
		if err != nil {
			t.Fatalf("Token(): %v", err)
		}
		if _, err := e.verify.VerifyAccessToken(ctx, tok.AccessToken, stsIssuer); err != nil {
			t.Errorf("our verifier rejects the refreshed access token: %v", err)
		}
		unchanged(t)
	})
}
