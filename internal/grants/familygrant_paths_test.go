package grants

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestEveryFamilyRecordsTheGrantThatBeganIt (docs/security.md A-98):
// each way a family begins (token exchange at /oauth2/token, Confluent's
// and Google's /v1/token, jwt-bearer, authorization_code at /oauth2/token
// and /v1/oauthtoken) records the grant that began it (fam_grant, the
// same string the client's allowlist holds), on SQLite and PostgreSQL;
// with that grant taken, the refresh is refused at every token endpoint
// in that endpoint's own error shape.
func TestEveryFamilyRecordsTheGrantThatBeganIt(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testEveryFamilyRecordsTheGrantThatBeganIt(t, backendStore(t, backend)) })
	}
}

func testEveryFamilyRecordsTheGrantThatBeganIt(t *testing.T, store storage.Store) {
	const kafka = "https://kafka.example"
	m := newMatrixEnvOn(t, store)
	ctx := t.Context()
	familyPool(t, m, kafka)
	post := func(path, id, sec string, form url.Values) (int, map[string]any, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, m.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, sec)
		resp, body := do(t, req)
		code, _ := body["error"].(string)
		reason, _ := body["reason"].(string)
		if errs, ok := body["errors"].([]any); ok && len(errs) == 1 { // Confluent's shape
			e := errs[0].(map[string]any)
			code, _ = e["code"].(string)
			reason, _ = e["reason"].(string)
		}
		return resp.StatusCode, body, code, reason
	}
	type begin struct {
		name, grant, path string
		form              func(c storage.Client) url.Values
	}
	begins := []begin{
		{"token-exchange /oauth2/token", oauth2.GrantTypeTokenExchange, PathToken, func(storage.Client) url.Values {
			return exchangeForm(m.subjectToken(t, "lf"), "pool", "lf", "scope", "read offline_access", "audience", kafka)
		}},
		{"token-exchange Confluent", oauth2.GrantTypeTokenExchange, PathConfluentToken, func(storage.Client) url.Values {
			return exchangeForm(m.subjectToken(t, "lf"), "identity_pool_id", "lf", "scope", "read offline_access", "audience", kafka)
		}},
		{"token-exchange Google /v1/token", oauth2.GrantTypeTokenExchange, PathGoogleToken, func(storage.Client) url.Values {
			return exchangeForm(m.subjectToken(t, "lf"), "audience", "//sts.example/pools/lf/providers/p", "scope", "read offline_access")
		}},
		{"jwt-bearer", oauth2.GrantTypeJWTBearer, PathToken, func(storage.Client) url.Values {
			return url.Values{"grant_type": {oauth2.GrantTypeJWTBearer}, "assertion": {m.subjectToken(t, "lf")}, "pool": {"lf"},
				"scope": {"read offline_access"}, "audience": {kafka}}
		}},
		{"authorization_code /oauth2/token", oauth2.GrantTypeAuthorizationCode, PathToken, func(c storage.Client) url.Values {
			return m.authCode(t, c, "ada", "read offline_access")
		}},
		{"authorization_code /v1/oauthtoken", oauth2.GrantTypeAuthorizationCode, PathGoogleOAuthToken, func(c storage.Client) url.Values {
			return m.authCode(t, c, "ada", "read offline_access")
		}},
	}
	refreshes := []struct {
		path  string
		extra url.Values
	}{{PathToken, nil}, {PathGoogleOAuthToken, nil}, {PathConfluentToken, url.Values{"identity_pool_id": {"lf"}}}}
	for _, b := range begins {
		for _, r := range refreshes {
			t.Run(b.name+" then refresh at "+r.path, func(t *testing.T) {
				if r.path == PathConfluentToken && b.grant == oauth2.GrantTypeAuthorizationCode {
					t.Skip("a person's family has no pool to name at Confluent")
				}
				c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{b.grant, oauth2.GrantTypeRefreshToken},
					Pools: []string{"lf"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{kafka, stsIssuer},
					RedirectURIs: []string{"https://app.example/cb"}})
				status, body, _, _ := post(b.path, c.ID, sec, b.form(c))
				rt, _ := body["refresh_token"].(string)
				if status != http.StatusOK || rt == "" {
					t.Fatalf("begin = %d %v, want a family", status, body)
				}
				stored, err := m.store.GetRefreshTokenByDigest(ctx, secret.Digest(m.pepper, rt))
				if err != nil {
					t.Fatal(err)
				}
				var tmpl tokens.FamilyTemplate
				if err := json.Unmarshal(stored.Claims, &tmpl); err != nil {
					t.Fatal(err)
				}
				if tmpl.Grant != b.grant {
					t.Errorf("fam_grant = %q, want %q", tmpl.Grant, b.grant)
				}
				if err := m.store.UpdateClient(ctx, c.ID, func(o storage.Client) (storage.Client, error) {
					o.GrantTypes = []string{oauth2.GrantTypeRefreshToken, oauth2.GrantTypeClientCredentials}
					return o, nil
				}); err != nil {
					t.Fatal(err)
				}
				form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
				for k, v := range r.extra {
					form[k] = v
				}
				status, body, code, reason := post(r.path, c.ID, sec, form)
				if status != http.StatusBadRequest || code != oauth2.ErrorUnauthorizedClient || reason != ReasonGrantNotAllowed || body["access_token"] != nil {
					t.Errorf("refresh after %s was taken = %d %v, want 400 unauthorized_client %s", b.grant, status, body, ReasonGrantNotAllowed)
				}
			})
		}
	}
}
