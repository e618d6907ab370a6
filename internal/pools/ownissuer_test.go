package pools_test

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

// TestProviderNotOurOwnIssuer: a provider may not trust sts's own issuer.
// Its tokens would come back as external ones: an ID token of ours
// exchanged through such a pool would leave behind its principal's
// lifetime checks, and the provider's cached copy of our keys would keep
// a revoked key (docs/security.md A-56). Our own tokens are exchanged
// as subject_token_type access_token instead.
func TestProviderNotOurOwnIssuer(t *testing.T) {
	ctx := t.Context()
	svc, _ := acmeService(t, pools.Limits{OwnIssuer: "https://sts.example"})
	caller := pools.Caller{Actor: "test"}
	if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	provider := func(iss string) storage.Provider {
		return storage.Provider{PoolID: "ci", ID: "p", Issuer: iss, JWKSURI: "https://keys.example/jwks", Audiences: []string{"sts"}}
	}
	// Spelled otherwise (case, the default port, a trailing slash) it is
	// still ours (federation.SameIssuer).
	for _, iss := range []string{"https://sts.example", "https://sts.example/", "HTTPS://STS.EXAMPLE", "https://STS.example", "https://sts.example:443/"} {
		if _, err := svc.CreateProvider(ctx, caller, provider(iss)); err == nil || !strings.Contains(err.Error(), "own issuer") {
			t.Errorf("CreateProvider trusting our own issuer %q = %v, want an error naming our own issuer", iss, err)
		}
	}
	if _, err := svc.CreateProvider(ctx, caller, provider("https://issuer.example")); err != nil {
		t.Fatalf("CreateProvider for another issuer: %v", err)
	}
	own := "https://STS.example:443"
	if _, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Issuer: &own}); err == nil || !strings.Contains(err.Error(), "own issuer") {
		t.Errorf("UpdateProvider to our own issuer %q = %v, want an error naming our own issuer", own, err)
	}
}
