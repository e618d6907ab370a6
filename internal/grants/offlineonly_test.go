package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestDefaultScopeOfOnlyOfflineAccess: when the default scope (none
// asked for, or Google's default scope) holds nothing but offline_access,
// which a default never holds (T-151), there is nothing to issue: the
// exchange is refused with invalid_scope, as it was before T-151 (an
// anonymous caller was refused offline_access), rather than answered with
// a token of no scope, which /v1/token returns without a scope member and
// Google's libraries read as the scope they asked for. Asked for by name,
// offline_access is still granted.
func TestDefaultScopeOfOnlyOfflineAccess(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	ctx := t.Context()
	addOfflinePool(t, o, storage.Pool{ID: "only", AllowUnauthenticated: true, Scopes: []string{ScopeOfflineAccess}})
	// A client whose scopes meet pool "offline" only in offline_access.
	narrow := secret.PrefixClientSecret.Generate()
	nc := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(o.pepper, narrow), GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: []string{"offline"}, Scopes: []string{ScopeOfflineAccess, "write"}, Audiences: []string{stsIssuer}}
	if err := e.store.CreateClient(ctx, nc); err != nil {
		t.Fatal(err)
	}
	subject := func(pool string) string {
		claims := e.issuer.claims(time.Now(), "u1")
		claims["aud"] = pool
		return e.issuer.mint(t, "RS256", claims)
	}
	post := func(path string, form map[string]string, user, pass string) (*http.Response, map[string]any) {
		f := exchangeForm(form["subject_token"])
		for k, v := range form {
			if k != "subject_token" {
				f.Set(k, v)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		return do(t, req)
	}
	for _, tc := range []struct {
		name       string
		path       string
		form       map[string]string
		user, pass string
	}{
		{"T-151 anonymous, /v1/token, Google's default scope", PathGoogleToken,
			map[string]string{"subject_token": subject("only"), "audience": "pools/only/providers/p", "scope": cloudPlatform}, "", ""},
		{"T-151 anonymous, no scope", PathToken, map[string]string{"subject_token": subject("only"), "pool": "only"}, "", ""},
		{"T-151 client, no scope", PathToken, map[string]string{"subject_token": subject("only"), "pool": "only"}, o.client.ID, o.secret},
		{"T-151 client, /v1/token, Google's default scope", PathGoogleToken,
			map[string]string{"subject_token": subject("only"), "audience": "pools/only/providers/p", "scope": cloudPlatform}, o.client.ID, o.secret},
		{"T-151 client meeting the pool only in offline_access, no scope", PathToken,
			map[string]string{"subject_token": subject("offline"), "pool": "offline"}, nc.ID, narrow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(tc.path, tc.form, tc.user, tc.pass)
			if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidScope || body["reason"] != ReasonScopeDefaultEmpty || body["access_token"] != nil {
				t.Errorf("= %d %v, want 400 invalid_scope, %s", resp.StatusCode, body, ReasonScopeDefaultEmpty)
			}
		})
	}
	t.Run("T-151 client naming offline_access", func(t *testing.T) {
		resp, body := post(PathToken, map[string]string{"subject_token": subject("only"), "pool": "only", "scope": ScopeOfflineAccess}, o.client.ID, o.secret)
		if resp.StatusCode != http.StatusOK || body["refresh_token"] == nil {
			t.Errorf("= %d %v, want 200 with a refresh token", resp.StatusCode, body)
		}
	})
}
