package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
)

// TestAttributeNamedGroups (docs/security.md T-186): an issued token's
// groups are its attributes.groups, so a mapping attribute of that name
// was overwritten by mapping.groups (the attribute silently dropped, where
// the dry run shows both) or, without mapping.groups, read by consumers
// as the token's groups. Such a pool does not compile: its exchanges are
// refused, nothing issued.
func TestAttributeNamedGroups(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	for _, p := range []storage.Pool{
		{ID: "both", Mapping: storage.Mapping{Groups: `["dev"]`, Attributes: map[string]string{"groups": "assertion.repository"}}},
		{ID: "attr", Mapping: storage.Mapping{Attributes: map[string]string{"groups": "assertion.repository"}}},
	} {
		p.OrgID, p.Condition, p.AllowUnauthenticated, p.Scopes = "acme", "true", true, []string{"read"}
		if err := e.store.CreatePool(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: p.ID, ID: "p", Issuer: e.issuer.URL, Audiences: []string{p.ID}}); err != nil {
			t.Fatal(err)
		}
		c := e.issuer.claims(time.Now(), "u1")
		c["aud"] = p.ID
		resp, body := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", c), "pool", p.ID))
		if resp.StatusCode == http.StatusOK {
			got, _ := e.verify.VerifyAccessTokenAnyAudience(ctx, body["access_token"].(string))
			t.Errorf("pool %s: issued a token with attributes %v, want the pool refused as %s", p.ID, got.Attributes, policy.ReasonPolicyInvalid)
			continue
		}
		if body["reason"] != string(policy.ReasonPolicyInvalid) {
			t.Errorf("pool %s: %d %v, want %s", p.ID, resp.StatusCode, body, policy.ReasonPolicyInvalid)
		}
	}
}
