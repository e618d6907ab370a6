package trust_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/internal/trust"
)

func TestRegistrySQLite(t *testing.T) { testRegistry(t, ststest.NewStore(t)) }

func TestRegistryPostgres(t *testing.T) {
	dsn := ststest.PostgresDSN(t)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	testRegistry(t, s)
}

const iss = "https://issuer.example"

func testRegistry(t *testing.T, store storage.Store) {
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme"}))
	must(store.CreateOrganization(ctx, storage.Organization{ID: "globex", Name: "Globex"}))
	for _, p := range []storage.Pool{
		{ID: "a", OrgID: "acme", Condition: "true"},
		{ID: "b", OrgID: "acme", Condition: "true"},
		{ID: "off", OrgID: "acme", Condition: "true", Disabled: true},
		{ID: "broken", OrgID: "acme", Condition: "assertion.sub +"},
		{ID: "g", OrgID: "globex", Condition: "true"},
	} {
		must(store.CreatePool(ctx, p))
	}
	for _, p := range []storage.Provider{
		{PoolID: "a", ID: "p1", Issuer: iss, Audiences: []string{"aud-a"}},
		{PoolID: "a", ID: "p2", Issuer: "https://other.example", Audiences: []string{"aud-a"}},
		{PoolID: "b", ID: "p1", Issuer: iss, Audiences: []string{"shared"}},
		{PoolID: "a", ID: "p3", Issuer: iss, Audiences: []string{"shared"}},
		{PoolID: "off", ID: "p1", Issuer: iss, Audiences: []string{"aud-off"}},
		{PoolID: "b", ID: "dis", Issuer: iss, Audiences: []string{"aud-dis"}, Disabled: true},
		{PoolID: "broken", ID: "p1", Issuer: iss, Audiences: []string{"aud-broken"}},
		{PoolID: "g", ID: "p1", Issuer: iss, Audiences: []string{"shared"}},
	} {
		must(store.CreateProvider(ctx, p))
	}
	compiler, err := policy.NewCompiler(policy.Options{})
	must(err)
	clock := time.Unix(1_800_000_000, 0)
	r := &trust.Registry{Store: store, Compiler: compiler, Now: func() time.Time { return clock }}

	for _, tc := range []struct {
		name                   string
		sel                    trust.Selector
		wantPool, wantProvider string
		wantReason             trust.Reason
	}{
		{"by issuer and audience", trust.Selector{Issuer: iss, Audiences: []string{"aud-a"}}, "a", "p1", ""},
		{"named pool picks the provider by issuer", trust.Selector{PoolID: "a", Issuer: "https://other.example", Audiences: []string{"aud-a"}}, "a", "p2", ""},
		{"named pool and provider", trust.Selector{PoolID: "b", ProviderID: "p1"}, "b", "p1", ""},
		{"ambiguous", trust.Selector{Issuer: iss, Audiences: []string{"shared"}}, "", "", trust.ReasonAmbiguousPool},
		{"an organization's own pools only (A-84)", trust.Selector{Issuer: iss, Audiences: []string{"shared"}, OrgID: "globex"}, "g", "p1", ""},
		{"an organization's own ambiguity", trust.Selector{Issuer: iss, Audiences: []string{"shared"}, OrgID: "acme"}, "", "", trust.ReasonAmbiguousPool},
		{"another organization's pool is no candidate", trust.Selector{Issuer: iss, Audiences: []string{"aud-a"}, OrgID: "globex"}, "", "", trust.ReasonAudienceMismatch},
		{"ambiguity resolved by name", trust.Selector{PoolID: "b", Issuer: iss, Audiences: []string{"shared"}}, "b", "p1", ""},
		{"unknown issuer", trust.Selector{Issuer: "https://nope.example", Audiences: []string{"aud-a"}}, "", "", trust.ReasonIssuerUnknown},
		{"audience mismatch", trust.Selector{Issuer: iss, Audiences: []string{"zzz"}}, "", "", trust.ReasonAudienceMismatch},
		{"disabled pool by issuer", trust.Selector{Issuer: iss, Audiences: []string{"aud-off"}}, "", "", trust.ReasonPoolDisabled},
		{"disabled pool by name", trust.Selector{PoolID: "off", Issuer: iss}, "", "", trust.ReasonPoolDisabled},
		{"disabled provider", trust.Selector{Issuer: iss, Audiences: []string{"aud-dis"}}, "", "", trust.ReasonProviderDisabled},
		{"disabled provider by name", trust.Selector{PoolID: "b", ProviderID: "dis"}, "", "", trust.ReasonProviderDisabled},
		{"unknown pool", trust.Selector{PoolID: "nope", Issuer: iss}, "", "", trust.ReasonPoolUnknown},
		{"unknown provider", trust.Selector{PoolID: "a", ProviderID: "nope"}, "", "", trust.ReasonProviderUnknown},
		{"invalid policy fails closed", trust.Selector{Issuer: iss, Audiences: []string{"aud-broken"}}, "", "", trust.ReasonPolicyInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := r.Select(ctx, tc.sel)
			if got := trust.ReasonOf(err); got != tc.wantReason {
				t.Fatalf("Select(%+v) reason = %q (%v), want %q", tc.sel, got, err, tc.wantReason)
			}
			if err == nil && (m.Pool.ID != tc.wantPool || m.Provider.ID != tc.wantProvider) {
				t.Errorf("Select(%+v) = %s/%s, want %s/%s", tc.sel, m.Pool.ID, m.Provider.ID, tc.wantPool, tc.wantProvider)
			}
			// Lookup answers from the snapshot Select loaded, the same,
			// except where Select would refresh (an unknown pool or issuer).
			lm, known, lerr := r.Lookup(tc.sel)
			wantKnown := tc.wantReason != trust.ReasonPoolUnknown && tc.wantReason != trust.ReasonIssuerUnknown
			switch {
			case known != wantKnown:
				t.Errorf("Lookup(%+v) known = %v, want %v", tc.sel, known, wantKnown)
			case known && (trust.ReasonOf(lerr) != tc.wantReason || lm.Pool != m.Pool || lm.Provider.ID != m.Provider.ID):
				t.Errorf("Lookup(%+v) = %v, %v; Select gave %v, %v", tc.sel, lm, lerr, m, err)
			}
		})
	}

	// Compiled once per revision: an unrelated refresh keeps the program,
	// a condition change recompiles.
	m, err := r.Select(ctx, trust.Selector{PoolID: "a", ProviderID: "p1"})
	must(err)
	prg := m.Pool.Program
	must(r.Refresh(ctx))
	m, _ = r.Select(ctx, trust.Selector{PoolID: "a", ProviderID: "p1"})
	if m.Pool.Program != prg {
		t.Error("refresh recompiled an unchanged pool")
	}
	must(store.UpdatePool(ctx, "a", func(p storage.Pool) (storage.Pool, error) { p.Condition = "false"; return p, nil }))
	must(r.Refresh(ctx))
	m, _ = r.Select(ctx, trust.Selector{PoolID: "a", ProviderID: "p1"})
	if m.Pool.Program == prg || m.Pool.Condition != "false" {
		t.Error("a condition change was not recompiled")
	}

	// On-demand refresh: a pool created after the snapshot is found on the
	// first miss, and misses are rate-limited (MinRefresh).
	must(store.CreatePool(ctx, storage.Pool{ID: "new", OrgID: "acme", Condition: "true"}))
	must(store.CreateProvider(ctx, storage.Provider{PoolID: "new", ID: "p", Issuer: iss, Audiences: []string{"n"}}))
	clock = clock.Add(2 * time.Second)
	if _, err := r.Select(ctx, trust.Selector{PoolID: "new"}); err != nil {
		t.Errorf("new pool not found on demand: %v", err)
	}
	must(store.CreatePool(ctx, storage.Pool{ID: "newer", OrgID: "acme", Condition: "true"}))
	if _, err := r.Select(ctx, trust.Selector{PoolID: "newer"}); trust.ReasonOf(err) != trust.ReasonPoolUnknown {
		t.Errorf("second miss within MinRefresh refreshed again: %v", err)
	}
	// Disabling takes effect on the next refresh (docs/security.md T-57).
	must(store.UpdatePool(ctx, "new", func(p storage.Pool) (storage.Pool, error) { p.Disabled = true; return p, nil }))
	must(r.Refresh(ctx))
	if _, err := r.Check(ctx, "new", "p"); trust.ReasonOf(err) != trust.ReasonPoolDisabled {
		t.Errorf("Check(disabled) = %v, want pool_disabled", err)
	}
	// Run refreshes until its context ends.
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	r.Run(rctx)
}

func TestParseResourceName(t *testing.T) {
	for _, tc := range []struct {
		in             string
		pool, provider string
		ok             bool
	}{
		{"//sts.example/pools/ci/providers/github", "ci", "github", true},
		{"pools/ci/providers/github", "ci", "github", true},
		{"//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/gh", "ci", "gh", true},
		{"//iam.googleapis.com/locations/global/workforcePools/staff/providers/okta", "staff", "okta", true},
		{"//iam.googleapis.com/projects/1234567890123/locations/global/workloadIdentityPools/ci/providers/gh", "ci", "gh", true},
		// T-130: Google's names are Google's, as Google STS takes them: its
		// IAM host and a project number. Our own form takes any host.
		{"//sts.example.com/projects/123/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//sts.example.com/locations/global/workforcePools/staff/providers/okta", "", "", false},
		{"//IAM.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com./projects/1/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com:443/locations/global/workforcePools/staff/providers/okta", "", "", false},
		{"//iam.googleapis.com/projects/my-project/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/projects/+1/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/projects/1e3/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/projects/12345678901234567890/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//sts.example/x/pools/ci/providers/github", "", "", false},
		// T-117: only Google's two shapes, whole and under a host, as
		// Google STS and its client libraries take them.
		{"locations/global/workforcePools/staff/providers/okta", "", "", false},
		{"projects/1/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/anything/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/a/b/c/d/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/projects/1/locations/global/workforcePools/staff/providers/okta", "", "", false},
		{"//iam.googleapis.com/x/locations/global/workforcePools/staff/providers/okta", "", "", false},
		{"//iam.googleapis.com/projects//locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/projects/1/locations/us/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/gh/", "", "", false},
		{"https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/gh", "", "", false},
		{"x/pools/ci/providers/github", "", "", false},
		{"//sts.example/pools/ci/providers/github/keys/k", "", "", false},
		{"pools/ci/providers/", "", "", false},
		{"pools/c i/providers/x", "", "", false},
		{"sts", "", "", false},
		{"//", "", "", false},
	} {
		pool, provider, ok := trust.ParseResourceName(tc.in)
		if pool != tc.pool || provider != tc.provider || ok != tc.ok {
			t.Errorf("ParseResourceName(%q) = %q, %q, %v, want %q, %q, %v", tc.in, pool, provider, ok, tc.pool, tc.provider, tc.ok)
		}
	}
}
