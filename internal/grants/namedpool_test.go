package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestNamedPoolBindsEveryGrant: a pool the request names
// (identity_pool_id, required on the Confluent path; pool at
// /oauth2/token) binds every grant, not only token exchange: a refresh
// token is refreshed only under its family's pool, and client_credentials,
// whose tokens belong to no pool, is refused when a pool is named. Both
// answered 200 with a token the named pool never judged, even naming a
// pool that does not exist (docs/security.md T-143). A refused refresh
// leaves the refresh token as it was.
func TestNamedPoolBindsEveryGrant(t *testing.T) {
	o := newOfflineEnv(t)
	ctx := t.Context()
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "kafka"}
	if err := o.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := o.store.UpdateClient(ctx, o.client.ID, func(c storage.Client) (storage.Client, error) {
		c.PrincipalID = sa.ID
		c.GrantTypes = append(c.GrantTypes, oauth2.GrantTypeClientCredentials)
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Refreshed access tokens would live an hour but for the Confluent
	// path's 900 s.
	o.grant.Refresh.AccessLifetime = time.Hour
	o.handler.Grants = append(o.handler.Grants, &ClientCredentials{Issuer: o.grant.Issuer, Principals: o.store})
	mux := http.NewServeMux()
	o.handler.Mount(mux)
	o.srv.Config.Handler = mux
	send := func(path string, form url.Values) (*http.Response, map[string]any) { return o.postAt(t, path, form) }

	rt := o.confluentFamily(t) // it ends with its subject token, in an hour
	refresh := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	clientCredentials := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name, path   string
		form         url.Values
		code, reason string
		confluentSrc string
	}{
		{"refresh naming another pool", PathConfluentToken, refresh("identity_pool_id", "ci"), oauth2.ErrorInvalidGrant, ReasonRefreshPoolMismatch, "refresh_token"},
		{"refresh naming no such pool", PathConfluentToken, refresh("identity_pool_id", "no-such-pool"), oauth2.ErrorInvalidGrant, ReasonRefreshPoolMismatch, "refresh_token"},
		{"refresh naming another pool at /oauth2/token", PathToken, refresh("pool", "ci"), oauth2.ErrorInvalidGrant, ReasonRefreshPoolMismatch, ""},
		{"client_credentials naming a pool", PathConfluentToken, clientCredentials("identity_pool_id", "offline"), oauth2.ErrorInvalidRequest, ReasonPoolNotApplicable, "identity_pool_id"},
		{"client_credentials naming no such pool", PathConfluentToken, clientCredentials("identity_pool_id", "no-such-pool"), oauth2.ErrorInvalidRequest, ReasonPoolNotApplicable, "identity_pool_id"},
		{"client_credentials naming a pool at /oauth2/token", PathToken, clientCredentials("pool", "offline"), oauth2.ErrorInvalidRequest, ReasonPoolNotApplicable, ""},
	} {
		resp, body := send(tc.path, tc.form)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", tc.name, resp.StatusCode, body)
			continue
		}
		if tc.path == PathToken {
			if body["error"] != tc.code || body["reason"] != tc.reason {
				t.Errorf("%s: %v, want %s (%s)", tc.name, body, tc.code, tc.reason)
			}
			continue
		}
		e0 := confluentErr(t, body)
		src, _ := e0["source"].(map[string]any)
		if e0["code"] != tc.code || e0["reason"] != tc.reason || src["parameter"] != tc.confluentSrc {
			t.Errorf("%s: %v, want %s (%s) naming %s", tc.name, e0, tc.code, tc.reason, tc.confluentSrc)
		}
	}

	// The refusals left the refresh token as it was: refreshed under its
	// own pool it rotates (a consumed one would be a reuse, ending the
	// family), within the Confluent path's 900 s.
	resp, body := send(PathConfluentToken, refresh("identity_pool_id", "offline"))
	if n, _ := body["expires_in"].(float64); resp.StatusCode != http.StatusOK || body["refresh_token"] == nil || n <= 0 || n > ConfluentLifetime.Seconds() {
		t.Errorf("refresh under its own pool: %d %v", resp.StatusCode, body)
	}
	// Naming no pool, both grants are as before.
	if resp, body = send(PathToken, clientCredentials()); resp.StatusCode != http.StatusOK {
		t.Errorf("client_credentials naming no pool: %d %v", resp.StatusCode, body)
	}
}
