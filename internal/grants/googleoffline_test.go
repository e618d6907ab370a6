package grants

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	googlecreds "golang.org/x/oauth2/google"

	"github.com/opensts/sts/internal/oauth2"
)

// TestDefaultScopeWithoutOfflineAccess: a pool whose scopes include
// offline_access, exchanged through by Google's client libraries, which
// ask for the cloud-platform scope (the pool's defaults) or for none.
// The default scope held offline_access, so an anonymous credential file
// was refused (invalid_scope, offline_access_needs_client) for a scope it
// never asked for, and one with client_id and client_secret was handed a
// refresh token, a new family at every re-exchange, that x/oauth2 never
// uses. A refresh token is issued only to a request that names
// offline_access (docs/security.md T-152). The judge is x/oauth2's
// loader of the credential file.
func TestDefaultScopeWithoutOfflineAccess(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	claims := e.issuer.claims(time.Now(), "u1")
	claims["aud"] = "offline"
	path := filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(path, []byte(e.issuer.mint(t, "RS256", claims)), 0o600); err != nil {
		t.Fatal(err)
	}
	file := func(withClient bool) []byte {
		f := map[string]any{"type": "external_account", "audience": "//sts.example/pools/offline/providers/p",
			"subject_token_type": oauth2.TokenTypeJWT, "token_url": e.srv.URL + PathGoogleToken,
			"credential_source": map[string]any{"file": path}}
		if withClient {
			f["client_id"], f["client_secret"] = o.client.ID, o.secret
		}
		b, _ := json.Marshal(f)
		return b
	}
	for _, tc := range []struct {
		name        string
		withClient  bool
		scopes      []string
		wantScope   string
		wantRefresh bool
	}{
		{"T-152 anonymous, Google's default scope", false, []string{cloudPlatform}, "read", false},
		{"T-152 anonymous, no scope", false, nil, "read", false},
		{"T-152 client, Google's default scope", true, []string{cloudPlatform}, "read", false},
		{"T-152 client, no scope", true, nil, "read", false},
		{"T-152 client, offline_access asked for", true, []string{"read", ScopeOfflineAccess}, "read offline_access", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds, err := googlecreds.CredentialsFromJSONWithTypeAndParams(t.Context(), file(tc.withClient),
				googlecreds.ExternalAccount, googlecreds.CredentialsParams{Scopes: tc.scopes})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := creds.TokenSource.Token()
			if err != nil {
				t.Fatalf("Token() = %v, want a token", err)
			}
			c, err := e.verify.VerifyAccessToken(t.Context(), tok.AccessToken, stsIssuer)
			if err != nil {
				t.Fatalf("our verifier rejects the token: %v", err)
			}
			if got := tok.RefreshToken != ""; got != tc.wantRefresh || (c.GrantID != "") != tc.wantRefresh {
				t.Errorf("refresh token %t, grant_id %q; want a refresh token and a family: %t", got, c.GrantID, tc.wantRefresh)
			}
			if c.Scope != tc.wantScope {
				t.Errorf("scope = %q, want %q", c.Scope, tc.wantScope)
			}
		})
	}

	// The standard path: no scope is the pool's ceiling, offline_access
	// left out unless named.
	form := exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "offline")
	for _, withClient := range []bool{false, true} {
		resp, body := o.post(form, withClient)
		if resp.StatusCode != 200 || body["refresh_token"] != nil || body["scope"] != "read" {
			t.Errorf("T-152 /oauth2/token without scope (client %t) = %d %v, want scope read and no refresh token", withClient, resp.StatusCode, body)
		}
	}
}
