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

// TestGoogleOAuthTokenUnhonouredParameters (docs/security.md T-184): a
// form at /v1/oauthtoken that asks for a narrower token than its refresh
// token's family (one audience, a shorter lifetime, an access boundary)
// is refused, never answered with the family's wider token. Google's
// ExchangeOauthTokenRequest has none of these parameters, and the same
// members in a JSON body are refused as unknown names. A refresh without
// them is served as before.
func TestGoogleOAuthTokenUnhonouredParameters(t *testing.T) {
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
	for _, tc := range []struct{ name, value string }{
		{"audience", "https://api.example"},
		{"resource", "https://api.example"},
		{"expires_in", "60"},
		{"options", `{"accessBoundary":{"accessBoundaryRules":[{"availableResource":"//storage.googleapis.com/projects/_/buckets/b","availablePermissions":["inRole:roles/storage.objectViewer"]}]}}`},
	} {
		resp, out := post(tc.name, tc.value)
		desc, _ := out["error_description"].(string)
		if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || !strings.HasPrefix(desc, tc.name+" is not a parameter of "+PathGoogleOAuthToken) {
			at, _ := out["access_token"].(string)
			c, _ := e.verify.VerifyAccessToken(ctx, at, stsIssuer)
			t.Errorf("refresh with %s=%s: %d %v %q (issued: aud %v, expires_in %v), want 400 invalid_request %q…",
				tc.name, tc.value, resp.StatusCode, out["error"], desc, c.Audience, out["expires_in"], tc.name+" is not a parameter of "+PathGoogleOAuthToken)
		}
	}
	// Sent empty, a parameter is omitted (RFC 6749 §3.1), as everywhere.
	if resp, out := post("audience", "", "expires_in", ""); resp.StatusCode != http.StatusOK || out["access_token"] == nil {
		t.Errorf("refresh with empty audience and expires_in: %d %v, want a token", resp.StatusCode, out)
	}
	stored, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(pepper, rt))
	if err != nil || stored.Revoked || !stored.RotatedAt.IsZero() {
		t.Errorf("the refresh token after the refusals: %+v %v, want it live and not rotated", stored, err)
	}
}

// TestGoogleOAuthTokenRepeatedEmptyFirst (docs/security.md T-184):
// audience and resource may repeat in a form, so a non-empty value after
// an empty one is refused as one alone is; only the first value was read,
// and the family's wider token was issued.
func TestGoogleOAuthTokenRepeatedEmptyFirst(t *testing.T) {
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
	for _, name := range []string{"audience", "resource"} {
		for _, values := range [][]string{{"", "https://api.example"}, {"https://api.example", ""}} {
			rt, err := refresh.Issue(ctx, &client, tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", ClientID: client.ID}, []string{"read"}, auds)
			if err != nil {
				t.Fatal(err)
			}
			form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}, name: values}
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleOAuthToken, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(client.ID, sec)
			resp, out := do(t, r)
			desc, _ := out["error_description"].(string)
			if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || !strings.HasPrefix(desc, name+" is not a parameter of "+PathGoogleOAuthToken) {
				at, _ := out["access_token"].(string)
				c, _ := e.verify.VerifyAccessToken(ctx, at, stsIssuer)
				t.Errorf("%s=%q: %d %v %q (issued: aud %v), want 400 invalid_request %q…",
					name, values, resp.StatusCode, out["error"], desc, c.Audience, name+" is not a parameter of "+PathGoogleOAuthToken)
			}
		}
	}
}
