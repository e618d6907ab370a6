package grants

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestDelegationEndsWithItsActor: a token issued to a subject with an
// actor names what the actor derives from beyond the subject (its pool in
// src_pool, its refresh-token family in src_grant), and ends when the
// actor's pool is disabled or its family revoked, though the subject's
// sources still stand (docs/security.md A-46). A re-exchange of it keeps
// them.
func TestDelegationEndsWithItsActor(t *testing.T) {
	o := newDelegationEnv(t)
	ctx := t.Context()
	issue, external, own, verify := o.issue, o.external, o.own, o.reason
	o.grant.Refresh.Sources = o.verify.Sources
	if err := o.store.UpdateClient(ctx, o.client.ID, func(c storage.Client) (storage.Client, error) {
		c.Pools = append(c.Pools, "actors")
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	subject := issue(external("offline", "u1", "read offline_access"), true)["access_token"].(string)
	actor := issue(external("actors", "bot", "read"), false)["access_token"].(string)
	delegated := issue(own(subject, "actor_token", actor, "actor_token_type", oauth2.TokenTypeAccessToken), false)["access_token"].(string)
	// A refresh-token family begun from a delegation ends with the actor
	// too: the refresh grant checks what the family derives from.
	withRefresh := own(subject, "actor_token", actor, "actor_token_type", oauth2.TokenTypeAccessToken)
	withRefresh.Set("scope", "read offline_access")
	rt := issue(withRefresh, true)["refresh_token"].(string)
	refresh := func() (int, map[string]any) {
		resp, body := o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
		if next, ok := body["refresh_token"].(string); ok {
			rt = next
		}
		return resp.StatusCode, body
	}
	again := issue(own(delegated), false)["access_token"].(string)
	for name, tok := range map[string]string{"delegated": delegated, "re-exchanged": again} {
		if p := accessPayload(t, tok); !slices.Equal(p.SourcePools, []string{tokens.SourcePool("actors", "ci")}) || p.Pool != "offline" {
			t.Errorf("%s: pool %q, src_pool %q; want the subject's, and the actor's as a further source", name, p.Pool, p.SourcePools)
		}
	}
	if p := accessPayload(t, subject); p.SourcePools != nil || p.SourceSubjects != nil {
		t.Errorf("a token without an actor names further sources: %+v", p)
	}
	setPool := func(disabled bool) {
		t.Helper()
		if err := o.store.UpdatePool(ctx, "actors", func(p storage.Pool) (storage.Pool, error) { p.Disabled = disabled; return p, nil }); err != nil {
			t.Fatal(err)
		}
		if err := o.grant.Trust.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	setPool(true)
	for name, tok := range map[string]string{"delegated": delegated, "re-exchanged": again} {
		if r := verify(tok); r != "token_source_gone" {
			t.Errorf("%s, the actor's pool disabled: reason %q, want token_source_gone", name, r)
		}
	}
	if r := verify(subject); r != "" {
		t.Errorf("the subject, the actor's pool disabled: %s", r)
	}
	if code, body := refresh(); code != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant {
		t.Errorf("refresh of a delegated family, the actor's pool disabled = %d %v, want invalid_grant", code, body)
	}
	setPool(false)
	if r := verify(delegated); r != "" {
		t.Errorf("delegated, the actor's pool enabled again: %s", r)
	}
	if code, body := refresh(); code != http.StatusOK {
		t.Errorf("refresh of a delegated family, the actor's pool enabled again = %d %v", code, body)
	}

	// An actor minted by a refresh-token family: revoking the family ends
	// the delegated token as it ends the actor.
	rt = issue(external("actors", "bot", "read offline_access"), true)["refresh_token"].(string)
	resp, body := o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh = %d %v", resp.StatusCode, body)
	}
	refreshed := body["access_token"].(string)
	family := grantID(t, refreshed)
	delegated = issue(own(subject, "actor_token", refreshed, "actor_token_type", oauth2.TokenTypeAccessToken), false)["access_token"].(string)
	if p := accessPayload(t, delegated); !slices.Equal(p.SourceGrants, []string{family}) || p.GrantID != grantID(t, subject) {
		t.Fatalf("delegated to a family's token: grant_id %q, src_grant %q; want the subject's and [%q]", p.GrantID, p.SourceGrants, family)
	}
	if err := o.store.PutRevocation(ctx, tokens.GrantRevocation(family, "test", now, 0)); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"the actor": refreshed, "delegated": delegated} {
		if r := verify(tok); r != "token_revoked" {
			t.Errorf("%s, the actor's family revoked: reason %q, want token_revoked", name, r)
		}
	}
	if r := verify(subject); r != "" {
		t.Errorf("the subject, the actor's family revoked: %s", r)
	}
}

// delegationEnv is newOfflineEnv with the access tokens' source checks on
// and a second pool, "actors" (provider "ci", scopes read and
// offline_access), whose tokens act for a subject of "offline": the
// setting of the tests of a delegation that ends with its actor
// (docs/security.md ), and their steps.
type delegationEnv struct {
	*offlineEnv
	// issue posts form and returns the body of its 200 answer.
	issue func(form url.Values, withClient bool) map[string]any
	// external is an exchange, in pool, of a token of the issuer for sub.
	external func(pool, sub, scope string) url.Values
	// own is an exchange of one of our access tokens, for scope read.
	own func(tok string, kv ...string) url.Values
	// reason is why tok is refused, "" when it is valid.
	reason func(tok string) string
}

func newDelegationEnv(t *testing.T) *delegationEnv {
	t.Helper()
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
	return &delegationEnv{
		offlineEnv: o,
		issue: func(form url.Values, withClient bool) map[string]any {
			t.Helper()
			resp, body := o.post(form, withClient)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("exchange = %d %v", resp.StatusCode, body)
			}
			return body
		},
		external: func(pool, sub, scope string) url.Values {
			c := o.issuer.claims(now, sub)
			c["aud"] = pool
			return exchangeForm(o.issuer.mint(t, "RS256", c), "pool", pool, "scope", scope)
		},
		own: func(tok string, kv ...string) url.Values {
			f := exchangeForm(tok, append([]string{"scope", "read"}, kv...)...)
			f.Set("subject_token_type", oauth2.TokenTypeAccessToken)
			return f
		},
		reason: func(tok string) string {
			t.Helper()
			_, err := o.verify.VerifyAccessTokenAnyAudience(ctx, tok)
			return tokens.Reason(err)
		},
	}
}
