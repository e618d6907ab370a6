package grants

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	googlecreds "golang.org/x/oauth2/google"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// addOfflinePool stores a pool of o's organization with one provider "p"
// of o's issuer (audience: the pool's ID), adds it to o's client's pools
// and reloads the trust registry. The pool is written as storage holds it,
// past the pool service's rules (as an older version may have stored it).
func addOfflinePool(t *testing.T, o *offlineEnv, p storage.Pool) {
	t.Helper()
	ctx := t.Context()
	p.OrgID, p.Condition = "acme", "true"
	if err := o.store.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := o.store.CreateProvider(ctx, storage.Provider{PoolID: p.ID, ID: "p", Issuer: o.issuer.URL, Audiences: []string{p.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := o.store.UpdateClient(ctx, o.client.ID, func(c storage.Client) (storage.Client, error) {
		c.Pools = append(c.Pools, p.ID)
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := o.grant.Trust.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultScopeWithoutOfflineAccess: a pool whose scopes include
// offline_access, exchanged through by Google's client libraries, which
// ask for the cloud-platform scope (the pool's defaults) or for none.
// The default scope held offline_access, so an anonymous credential file
// was refused (invalid_scope, offline_access_needs_client) for a scope it
// never asked for, and one with client_id and client_secret was handed a
// refresh token, a new family at every re-exchange, that x/oauth2 never
// uses. A refresh token is issued by a token exchange only to a request
// that names offline_access (docs/security.md T-151), whichever default
// stood in: the pool's ceiling, its google_default_scopes (a pool stored
// with offline_access in them before the pool service refused it), or
// the subject token's own scope at a re-exchange. The judge is x/oauth2's
// loader of the credential file.
func TestDefaultScopeWithoutOfflineAccess(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	addOfflinePool(t, o, storage.Pool{ID: "gds", AllowUnauthenticated: true,
		Scopes: []string{"read", "write", ScopeOfflineAccess}, GoogleDefaultScopes: []string{"read", ScopeOfflineAccess}})
	dir := t.TempDir()
	file := func(pool string, withClient bool) []byte {
		claims := e.issuer.claims(time.Now(), "u1")
		claims["aud"] = pool
		path := filepath.Join(dir, pool+".jwt")
		if err := os.WriteFile(path, []byte(e.issuer.mint(t, "RS256", claims)), 0o600); err != nil {
			t.Fatal(err)
		}
		f := map[string]any{"type": "external_account", "audience": "//sts.example/pools/" + pool + "/providers/p",
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
		pool        string
		withClient  bool
		scopes      []string
		wantScope   string
		wantRefresh bool
	}{
		{"T-151 anonymous, Google's default scope", "offline", false, []string{cloudPlatform}, "read", false},
		{"T-151 anonymous, no scope", "offline", false, nil, "read", false},
		{"T-151 client, Google's default scope", "offline", true, []string{cloudPlatform}, "read", false},
		{"T-151 client, no scope", "offline", true, nil, "read", false},
		{"T-151 client, offline_access asked for", "offline", true, []string{"read", ScopeOfflineAccess}, "read offline_access", true},
		{"T-151 anonymous, googleDefaultScopes holding offline_access", "gds", false, []string{cloudPlatform}, "read", false},
		{"T-151 client, googleDefaultScopes holding offline_access", "gds", true, []string{cloudPlatform}, "read", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds, err := googlecreds.CredentialsFromJSONWithTypeAndParams(t.Context(), file(tc.pool, tc.withClient),
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
	claims := e.issuer.claims(time.Now(), "u1")
	claims["aud"] = "offline"
	form := exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "offline")
	for _, withClient := range []bool{false, true} {
		resp, body := o.post(form, withClient)
		if resp.StatusCode != 200 || body["refresh_token"] != nil || body["scope"] != "read" {
			t.Errorf("T-151 /oauth2/token without scope (client %t) = %d %v, want scope read and no refresh token", withClient, resp.StatusCode, body)
		}
	}

	// A re-exchange without scope: the default is the subject token's
	// scope, offline_access left out; named, it is granted again.
	t.Run("T-151 re-exchange without scope", func(t *testing.T) {
		resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "offline", "scope", "read offline_access"), true)
		at, _ := body["access_token"].(string)
		if resp.StatusCode != 200 || body["refresh_token"] == nil || at == "" {
			t.Fatalf("exchange naming offline_access = %d %v, want a refresh token", resp.StatusCode, body)
		}
		f := exchangeForm(at)
		f.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		resp, body = o.post(f, true)
		if resp.StatusCode != 200 || body["refresh_token"] != nil || body["scope"] != "read" {
			t.Errorf("re-exchange without scope = %d %v, want scope read and no refresh token", resp.StatusCode, body)
		}
		f.Set("scope", "read offline_access")
		resp, body = o.post(f, true)
		if resp.StatusCode != 200 || body["refresh_token"] == nil {
			t.Errorf("re-exchange naming offline_access = %d %v, want a refresh token", resp.StatusCode, body)
		}
	})
}
