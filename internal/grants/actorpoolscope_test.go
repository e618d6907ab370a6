package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestDelegationEndsWithActorPoolNarrowing is docs/security.md A-93 for
// the actor of a delegation: the token exchanged with an actor token of
// pool "actors" (scope read) ends once that pool no longer grants read,
// as the actor token does, not only when the pool is gone.
func TestDelegationEndsWithActorPoolNarrowing(t *testing.T) {
	o := newOfflineEnv(t)
	ctx := t.Context()
	o.verify.Revocations = tokens.StoreRevocations{Store: o.store}
	src := tokens.NewStoreSources(o.store, o.grant.Trust)
	src.TTL, src.Audiences = 0, o.grant.ServerAudiences()
	o.verify.Sources = src
	if err := o.store.CreatePool(ctx, storage.Pool{ID: "actors", OrgID: "acme", Condition: "true",
		Scopes: []string{"read", ScopeOfflineAccess}, AllowUnauthenticated: true}); err != nil {
		t.Fatal(err)
	}
	if err := o.store.CreateProvider(ctx, storage.Provider{PoolID: "actors", ID: "ci", Issuer: o.issuer.URL, Audiences: []string{"actors"}}); err != nil {
		t.Fatal(err)
	}
	if err := o.grant.Trust.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	issue := func(form url.Values, withClient bool) map[string]any {
		t.Helper()
		resp, body := o.post(form, withClient)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange = %d %v", resp.StatusCode, body)
		}
		return body
	}
	external := func(pool, sub string, scope string) url.Values {
		c := o.issuer.claims(now, sub)
		c["aud"] = pool
		return exchangeForm(o.issuer.mint(t, "RS256", c), "pool", pool, "scope", scope)
	}
	own := func(tok string, kv ...string) url.Values {
		f := exchangeForm(tok, append([]string{"scope", "read"}, kv...)...)
		f.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		return f
	}
	verify := func(tok string) string {
		_, err := o.verify.VerifyAccessTokenAnyAudience(ctx, tok)
		return tokens.Reason(err)
	}
	subject := issue(external("offline", "u1", "read offline_access"), true)["access_token"].(string)
	actor := issue(external("actors", "bot", "read"), false)["access_token"].(string)
	delegated := issue(own(subject, "actor_token", actor, "actor_token_type", oauth2.TokenTypeAccessToken), false)["access_token"].(string)
	if r := verify(delegated); r != "" {
		t.Fatalf("delegated token before the narrowing: reason %q, want valid", r)
	}
	if err := o.store.UpdatePool(ctx, "actors", func(p storage.Pool) (storage.Pool, error) {
		p.Scopes = []string{ScopeOfflineAccess}
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := o.grant.Trust.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := verify(actor); r != "token_source_gone" {
		t.Errorf("actor token after its pool stopped granting read: reason %q, want token_source_gone", r)
	}
	if r := verify(delegated); r != "token_source_gone" {
		t.Errorf("delegated token outlives its actor's pool narrowing: reason %q, want token_source_gone (the actor token ended)", r)
	}
}
