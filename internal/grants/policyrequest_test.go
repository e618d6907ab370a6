package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestPolicyJudgesWhatIsIssued (docs/security.md T-185): a pool's
// condition over request.scope and request.audience judges the scope and
// audience the token will carry. A request that named none was judged on
// empty lists and issued the pool's whole ceiling or the default
// audience, which the condition refuses when they are asked for by name;
// Google's default scope and a resource in place of an audience got past
// it the same way. Same for the condition of an actor token's pool.
func TestPolicyJudgesWhatIsIssued(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	const kafka = "https://kafka.example"
	// Only acme/infra may deploy, and every other token is for kafka
	// alone.
	for _, p := range []storage.Pool{
		{ID: "guarded", OrgID: "acme", AllowUnauthenticated: true, Scopes: []string{"read", "deploy"}, Audiences: []string{kafka},
			Condition: `assertion.repository == "acme/infra" || (request.scope.all(s, s != "deploy") && request.audience.all(a, a == "` + kafka + `"))`},
		{ID: "actors", OrgID: "acme", AllowUnauthenticated: true, Condition: `request.scope.all(s, s != "deploy")`},
		{ID: "typed", OrgID: "acme", AllowUnauthenticated: true, Condition: `request.subject_token_type == "` + oauth2.TokenTypeIDToken + `"`},
		// Google's default scope stands for google_default_scopes here.
		{ID: "gds", OrgID: "acme", AllowUnauthenticated: true, Scopes: []string{"read", "deploy"}, GoogleDefaultScopes: []string{"read"},
			Condition: `request.scope == ["read"]`},
	} {
		if err := e.store.CreatePool(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: p.ID, ID: "p", Issuer: e.issuer.URL, Audiences: []string{p.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	token := func(repo, aud string) string {
		c := e.issuer.claims(time.Now(), "u1")
		c["repository"], c["aud"] = repo, aud
		return e.issuer.mint(t, "RS256", c)
	}
	refused := string(policy.ReasonConditionFalse)
	// A client of scope read: the default it is issued is read alone.
	pepper := []byte(strings.Repeat("p", 32))
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	sec := secret.PrefixClientSecret.Generate()
	readOnly := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: []string{"guarded"},
		Scopes: []string{"read"}, Audiences: []string{kafka}}
	if err := e.store.CreateClient(ctx, readOnly); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		path      string
		tok       string
		kv        []string
		wantScope string // "" when refused
		client    bool   // sent by readOnly, a client of scope read
	}{
		{"the scope and audience the condition admits", PathToken, token("acme/app", "guarded"), []string{"scope", "read", "audience", kafka}, "read", false},
		{"deploy asked by name", PathToken, token("acme/app", "guarded"), []string{"scope", "deploy", "audience", kafka}, "", false},
		{"no scope: the ceiling, deploy included", PathToken, token("acme/app", "guarded"), []string{"audience", kafka}, "", false},
		{"no audience: the default one", PathToken, token("acme/app", "guarded"), []string{"scope", "read"}, "", false},
		{"the default audience as a resource", PathToken, token("acme/app", "guarded"), []string{"scope", "read", "resource", stsIssuer}, "", false},
		{"kafka as a resource", PathToken, token("acme/app", "guarded"), []string{"scope", "read", "resource", kafka}, "read", false},
		{"Google's default scope", PathGoogleToken, token("acme/app", "guarded"),
			[]string{"audience", "pools/guarded/providers/p", "scope", GoogleDefaultScope, "options", `{"audiences":["` + kafka + `"]}`}, "", false},
		{"Google's default scope: the pool's google_default_scopes", PathGoogleToken, token("acme/app", "gds"),
			[]string{"audience", "pools/gds/providers/p", "scope", GoogleDefaultScope}, "read", false},
		{"the condition admits the ceiling", PathToken, token("acme/infra", "guarded"), nil, "read deploy", false},
		{"no scope, a client of read: the default within its scopes", PathToken, token("acme/app", "guarded"),
			[]string{"audience", kafka}, "read", true},
		{"an actor's pool, no scope", PathToken, token("acme/infra", "guarded"),
			[]string{"actor_token", token("acme/bot", "actors"), "actor_token_type", oauth2.TokenTypeJWT}, "", false},
		{"an actor's pool, read", PathToken, token("acme/infra", "guarded"),
			[]string{"scope", "read", "actor_token", token("acme/bot", "actors"), "actor_token_type", oauth2.TokenTypeJWT}, "read", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := exchangeForm(tc.tok, tc.kv...)
			if tc.path == PathToken {
				form.Set("pool", "guarded")
			}
			var resp *http.Response
			var body map[string]any
			if tc.client {
				resp, body = e.postAs(t, tc.path, form, readOnly.ID, sec)
			} else {
				resp, body = e.post(t, tc.path, form)
			}
			if tc.wantScope == "" {
				if resp.StatusCode != http.StatusBadRequest || body["reason"] != refused {
					t.Fatalf("got %d %v (scope %v), want 400 %s", resp.StatusCode, body["error"], body["scope"], refused)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %v", resp.StatusCode, body)
			}
			c, err := e.verify.VerifyAccessTokenAnyAudience(ctx, body["access_token"].(string))
			if err != nil || c.Scope != tc.wantScope {
				t.Errorf("issued scope %q (%v), want %q", c.Scope, err, tc.wantScope)
			}
		})
	}
	// An actor's pool judges the actor token: request.subject_token_type
	// is its actor_token_type there, not the subject token's.
	for _, tc := range []struct{ subjectType, actorType string }{
		{oauth2.TokenTypeJWT, oauth2.TokenTypeIDToken},
		{oauth2.TokenTypeIDToken, oauth2.TokenTypeJWT},
	} {
		form := exchangeForm(token("acme/infra", "guarded"), "pool", "guarded", "scope", "read",
			"actor_token", token("acme/bot", "typed"), "actor_token_type", tc.actorType)
		form.Set("subject_token_type", tc.subjectType)
		resp, body := e.post(t, PathToken, form)
		admitted := tc.actorType == oauth2.TokenTypeIDToken
		if got := resp.StatusCode == http.StatusOK; got != admitted || (!got && body["reason"] != refused) {
			t.Errorf("subject %s, actor %s: %d %v, want the actor's pool to judge the actor's type (admitted %v)",
				tc.subjectType, tc.actorType, resp.StatusCode, body["reason"], admitted)
		}
	}
}

// postAs posts form to path with client id's basic authentication.
func (e *env) postAs(t testing.TB, path string, form url.Values, id, sec string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	return do(t, req)
}
