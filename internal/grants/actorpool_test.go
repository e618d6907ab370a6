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

// TestActorPoolBoundsLifetime: a delegated token lives no longer than
// the maximum of the actor token's pool, as it lives no longer than the
// subject's pool's (docs/security.md T-168): the default is cut to it,
// and an expires_in beyond it is refused, not clamped.
func TestActorPoolBoundsLifetime(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "short", OrgID: "acme", Condition: "true", AllowUnauthenticated: true, MaxTokenLifetime: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "short", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"short"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	subject := e.issuer.mint(t, "RS256", e.issuer.claims(now, "u1")) // pool ci: an hour at most
	ac := e.issuer.claims(now, "bot")                                // an hour left
	ac["aud"] = "short"
	actor := e.issuer.mint(t, "RS256", ac)

	resp, body := e.post(t, PathToken, exchangeForm(subject, "pool", "ci", "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delegation = %d %v", resp.StatusCode, body)
	}
	if exp, _ := body["expires_in"].(float64); exp <= 0 || exp > 120 {
		t.Errorf("delegated token expires_in = %v, want at most the actor pool's 120 s", body["expires_in"])
	}
	code, reason := e.exchangeStatus(t, subject, "pool", "ci", "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT, "expires_in", "600")
	if code != http.StatusBadRequest || reason != ReasonLifetimeExceedsPool {
		t.Errorf("expires_in beyond the actor pool's maximum = %d %s, want 400 %s", code, reason, ReasonLifetimeExceedsPool)
	}
}

// TestActorPoolBoundsRefreshedLifetime: a delegation's refresh family
// mints access tokens that act for the actor too, so each lives no
// longer than the actor's pool's maximum as it is now, as each lives no
// longer than the family's own pool's (docs/security.md T-168).
func TestActorPoolBoundsRefreshedLifetime(t *testing.T) {
	o := newOfflineEnv(t)
	ctx := t.Context()
	src := tokens.NewStoreSources(o.store, o.grant.Trust)
	src.TTL, src.Audiences = 0, o.grant.ServerAudiences()
	o.grant.Refresh.Sources = src
	if err := o.store.CreatePool(ctx, storage.Pool{ID: "short", OrgID: "acme", Condition: "true", AllowUnauthenticated: true,
		Scopes: []string{"read"}, MaxTokenLifetime: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := o.store.CreateProvider(ctx, storage.Provider{PoolID: "short", ID: "p", Issuer: o.issuer.URL, Audiences: []string{"short"}}); err != nil {
		t.Fatal(err)
	}
	if err := o.store.UpdateClient(ctx, o.client.ID, func(c storage.Client) (storage.Client, error) {
		c.Pools = append(c.Pools, "short")
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := o.grant.Trust.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sc := o.issuer.claims(now, "u1")
	sc["aud"] = "offline"
	ac := o.issuer.claims(now, "bot")
	ac["aud"] = "short"
	resp, body := o.post(exchangeForm(o.issuer.mint(t, "RS256", sc), "pool", "offline", "scope", "read offline_access",
		"actor_token", o.issuer.mint(t, "RS256", ac), "actor_token_type", oauth2.TokenTypeJWT), true)
	rt, _ := body["refresh_token"].(string)
	if resp.StatusCode != http.StatusOK || rt == "" {
		t.Fatalf("delegation with offline_access = %d %v", resp.StatusCode, body)
	}
	if exp, _ := body["expires_in"].(float64); exp <= 0 || exp > 120 {
		t.Fatalf("delegated token expires_in = %v, want at most the actor pool's 120 s", body["expires_in"])
	}
	resp, body = o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh of the delegated family = %d %v", resp.StatusCode, body)
	}
	if exp, _ := body["expires_in"].(float64); exp <= 0 || exp > 120 {
		t.Errorf("refreshed delegated token expires_in = %v, want at most the actor pool's 120 s", body["expires_in"])
	}
}
