package pools_test

import (
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
)

// TestProviderNotOurOwnIssuer: a provider may not trust sts's own issuer.
// Its tokens would come back as external ones: an ID token of ours
// exchanged through such a pool would leave behind its principal's
// lifetime checks, and the provider's cached copy of our keys would keep
// a revoked key (docs/security.md A-56). Our own tokens are exchanged
// as subject_token_type access_token instead.
func TestProviderNotOurOwnIssuer(t *testing.T) {
	ctx := t.Context()
	st := ststest.NewStore(t)
	if err := st.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme", Tier: "enterprise"}); err != nil {
		t.Fatal(err)
	}
	svc, err := pools.NewService(st, pools.Limits{MaxTokenLifetime: 12 * time.Hour, OwnIssuer: "https://sts.example"})
	if err != nil {
		t.Fatal(err)
	}
	caller := pools.Caller{Actor: "test"}
	if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	provider := func(iss string) storage.Provider {
		return storage.Provider{PoolID: "ci", ID: "p", Issuer: iss, JWKSURI: "https://keys.example/jwks", Audiences: []string{"sts"}}
	}
	for _, iss := range []string{"https://sts.example", "https://sts.example/"} {
		if _, err := svc.CreateProvider(ctx, caller, provider(iss)); err == nil || !strings.Contains(err.Error(), "issuer") {
			t.Errorf("CreateProvider trusting our own issuer %q = %v, want an error naming the issuer", iss, err)
		}
	}
	if _, err := svc.CreateProvider(ctx, caller, provider("https://issuer.example")); err != nil {
		t.Fatalf("CreateProvider for another issuer: %v", err)
	}
	own := "https://sts.example"
	if _, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Issuer: &own}); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("UpdateProvider to our own issuer = %v, want an error naming the issuer", err)
	}
}
