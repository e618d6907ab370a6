package grants

import (
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestDelegationEndsWithActorPoolNarrowing is docs/security.md A-93 for
// the actor of a delegation: the token exchanged with an actor token of
// pool "actors" (scope read) ends once that pool no longer grants read,
// as the actor token does, not only when the pool is gone.
func TestDelegationEndsWithActorPoolNarrowing(t *testing.T) {
	o := newDelegationEnv(t)
	ctx := t.Context()
	issue, external, own, verify := o.issue, o.external, o.own, o.reason
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
