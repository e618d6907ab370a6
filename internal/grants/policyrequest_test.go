package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
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
	for _, tc := range []struct {
		name      string
		path      string
		tok       string
		kv        []string
		wantScope string // "" when refused
	}{
		{"the scope and audience the condition admits", PathToken, token("acme/app", "guarded"), []string{"scope", "read", "audience", kafka}, "read"},
		{"deploy asked by name", PathToken, token("acme/app", "guarded"), []string{"scope", "deploy", "audience", kafka}, ""},
		{"no scope: the ceiling, deploy included", PathToken, token("acme/app", "guarded"), []string{"audience", kafka}, ""},
		{"no audience: the default one", PathToken, token("acme/app", "guarded"), []string{"scope", "read"}, ""},
		{"the default audience as a resource", PathToken, token("acme/app", "guarded"), []string{"scope", "read", "resource", stsIssuer}, ""},
		{"kafka as a resource", PathToken, token("acme/app", "guarded"), []string{"scope", "read", "resource", kafka}, "read"},
		{"Google's default scope", PathGoogleToken, token("acme/app", "guarded"),
			[]string{"audience", "pools/guarded/providers/p", "scope", GoogleDefaultScope, "options", `{"audiences":["` + kafka + `"]}`}, ""},
		{"the condition admits the ceiling", PathToken, token("acme/infra", "guarded"), nil, "read deploy"},
		{"an actor's pool, no scope", PathToken, token("acme/infra", "guarded"),
			[]string{"actor_token", token("acme/bot", "actors"), "actor_token_type", oauth2.TokenTypeJWT}, ""},
		{"an actor's pool, read", PathToken, token("acme/infra", "guarded"),
			[]string{"scope", "read", "actor_token", token("acme/bot", "actors"), "actor_token_type", oauth2.TokenTypeJWT}, "read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := exchangeForm(tc.tok, tc.kv...)
			if tc.path == PathToken {
				form.Set("pool", "guarded")
			}
			resp, body := e.post(t, tc.path, form)
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
