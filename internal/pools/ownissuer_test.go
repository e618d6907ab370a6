package pools_test

import (
	"strings"
	"testing"
	"time"

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
	// Not in plain form (federation.PlainIssuer) it may be ours to a
	// relying party that normalises otherwise (new URL(iss).href reads
	// each of these as https://sts.example/), and its tokens' act entries
	// without iss are under it (docs/security.md T-166): refused too.
	for _, iss := range []string{"https://sts.example:0443", "https://%73ts.example", "https://sts.example.", "https://sts.example/a/.."} {
		if _, err := svc.CreateProvider(ctx, caller, provider(iss)); err == nil || !strings.Contains(err.Error(), "plain form") {
			t.Errorf("CreateProvider trusting %q = %v, want an error naming its form", iss, err)
		}
	}
	if _, err := svc.CreateProvider(ctx, caller, provider("https://issuer.example")); err != nil {
		t.Fatalf("CreateProvider for another issuer: %v", err)
	}
	notPlain := "https://issuer.example:0443"
	if _, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Issuer: &notPlain}); err == nil || !strings.Contains(err.Error(), "plain form") {
		t.Errorf("UpdateProvider to %q = %v, want an error naming its form", notPlain, err)
	}
	own := "https://STS.example:443"
	if _, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Issuer: &own}); err == nil || !strings.Contains(err.Error(), "own issuer") {
		t.Errorf("UpdateProvider to our own issuer %q = %v, want an error naming our own issuer", own, err)
	}
}

// TestProviderStoredAsOursStaysManageable: a provider stored with our
// issuer spelled otherwise before the API checked spellings, or by the
// CLI's direct mode (which has no OwnIssuer), can still be disabled and
// changed through the API; only an update that sets the issuer is judged
// by the rule (docs/security.md A-56).
func TestProviderStoredAsOursStaysManageable(t *testing.T) {
	ctx := t.Context()
	direct, st := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	if _, err := direct.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.CreateProvider(ctx, caller, storage.Provider{PoolID: "ci", ID: "p", Issuer: "HTTPS://STS.EXAMPLE", JWKSURI: "https://keys.example/jwks", Audiences: []string{"sts"}}); err != nil {
		t.Fatal(err)
	}
	api, err := pools.NewService(st, pools.Limits{MaxTokenLifetime: 12 * time.Hour, OwnIssuer: "https://sts.example"})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	got, err := api.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Disabled: &yes})
	if err != nil || !got.Disabled {
		t.Fatalf("disabling the provider through the API = %+v, %v; want it disabled", got, err)
	}
	if stored, err := st.GetProvider(ctx, "ci", "p"); err != nil || !stored.Disabled {
		t.Fatalf("stored provider = %+v, %v; want it disabled", stored, err)
	}
	// Setting the issuer is judged: to ours spelled otherwise again it is
	// refused, to another issuer it is taken.
	own, other := "https://sts.example:443/", "https://issuer.example"
	if _, err := api.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Issuer: &own}); err == nil || !strings.Contains(err.Error(), "own issuer") {
		t.Errorf("UpdateProvider to our own issuer %q = %v, want an error naming our own issuer", own, err)
	}
	if got, err := api.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Issuer: &other}); err != nil || got.Issuer != other {
		t.Errorf("UpdateProvider to %q = %+v, %v; want it set", other, got, err)
	}
}
