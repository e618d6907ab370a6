package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// issueExample is the trust configuration of the README, as written there.
const issueExample = `
organizations:
  - {id: acme, name: Acme, tier: enterprise}
pools:
  - id: ci
    organization: acme
    condition: 'assertion.repository_owner == "acme"'   # CEL; required for known multi-tenant issuers
    mapping: {subject: 'assertion.sub', attributes: {repo: 'assertion.repository'}}
    scopes: [read, write]                                 # ceiling
    max_token_lifetime: 1h
    providers:
      - id: github
        issuer: https://token.actions.githubusercontent.com
        audiences: [sts]
        jwks_uri: ""          # optional: discovery otherwise
        jwks_file: ""         # optional: uploaded JWKS (issuers that are not reachable)
`

func TestLoadTrustIssueExample(t *testing.T) {
	path := writeFile(t, issueExample)
	got, err := Load(Options{File: path, Environ: noEnv})
	if err != nil {
		t.Fatalf("Load(README example) = %v", err)
	}
	wantOrgs := []OrganizationConfig{{ID: "acme", Name: "Acme", Tier: "enterprise"}}
	wantPools := []PoolConfig{{
		ID:               "ci",
		Organization:     "acme",
		Condition:        `assertion.repository_owner == "acme"`,
		Mapping:          MappingConfig{Subject: "assertion.sub", Attributes: map[string]string{"repo": "assertion.repository"}},
		Scopes:           []string{"read", "write"},
		MaxTokenLifetime: time.Hour,
		Providers: []ProviderConfig{{
			ID:        "github",
			Issuer:    "https://token.actions.githubusercontent.com",
			Audiences: []string{"sts"},
		}},
	}}
	if diff := cmp.Diff(wantOrgs, got.Organizations); diff != "" {
		t.Errorf("Organizations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantPools, got.Pools); diff != "" {
		t.Errorf("Pools (-want +got):\n%s", diff)
	}
	if got.Federation.AllowLoopback {
		t.Error("federation.allow_loopback defaults to true, want false")
	}
	if got.Federation.VerifiedTokenCache != DefaultVerifiedTokenCache {
		t.Errorf("federation.verified_token_cache = %d, want %d by default", got.Federation.VerifiedTokenCache, DefaultVerifiedTokenCache)
	}
	if got.RateLimits != defaultRateLimits() || got.Audit != defaultAudit() {
		t.Errorf("rate_limits/audit = %+v %+v, want the defaults", got.RateLimits, got.Audit)
	}
}

func TestLoadTrustEveryField(t *testing.T) {
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, `
federation: {allow_loopback: true, verified_token_cache: 0}
rate_limits:
  per_ip: {rate: 0.5, burst: 3}
  per_client: {rate: 0, burst: 0}
  max_keys: 10
audit: {buffer: 10, batch: 5, flush_every: 250ms, mode: required, retention: 720h}
pools:
  - id: k8s
    organization: acme
    display_name: Kubernetes
    identity_claim: assertion.sub
    condition: ${COND}
    disabled: true
    allow_unauthenticated: true
    principal: 7f1c
    mapping: {groups: 'assertion.groups'}
    providers:
      - id: cluster
        issuer: http://127.0.0.1:9999
        audiences: [sts, "${AUD}"]
        jwks_file: `+jwks+`
        algorithms: [RS256]
        one_time_use: true
        allow_missing_kid: true
        allow_multiple_audiences: true
        disabled: true
`)
	env := func() []string { return []string{"COND=true", "AUD=extra"} }
	got, err := Load(Options{File: path, Environ: env})
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	want := []PoolConfig{{
		ID: "k8s", Organization: "acme", DisplayName: "Kubernetes", IdentityClaim: "assertion.sub",
		Condition: "true", Disabled: true, AllowUnauthenticated: true, Principal: "7f1c",
		Mapping: MappingConfig{Groups: "assertion.groups"},
		Providers: []ProviderConfig{{
			ID: "cluster", Issuer: "http://127.0.0.1:9999", Audiences: []string{"sts", "extra"},
			JWKSFile: jwks, JWKS: []byte(`{"keys":[]}`), Algorithms: []string{"RS256"}, OneTimeUse: true,
			AllowMissingKID: true, AllowMultipleAudiences: true, Disabled: true,
		}},
	}}
	if diff := cmp.Diff(want, got.Pools); diff != "" {
		t.Errorf("Pools (-want +got):\n%s", diff)
	}
	if !got.Federation.AllowLoopback || got.Federation.VerifiedTokenCache != 0 || got.RateLimits.PerIP != (RateLimitConfig{Rate: 0.5, Burst: 3}) ||
		got.RateLimits.PerClient != (RateLimitConfig{}) || got.RateLimits.MaxKeys != 10 {
		t.Errorf("federation/rate_limits = %+v %+v", got.Federation, got.RateLimits)
	}
	if got.Audit != (AuditConfig{Buffer: 10, Batch: 5, FlushEvery: 250 * time.Millisecond, Mode: AuditModeRequired, Retention: 720 * time.Hour}) {
		t.Errorf("audit = %+v", got.Audit)
	}
}

// TestLoadTrustProblems: unknown keys inside list items are reported like
// top-level ones, and every problem names its path, by id where there is
// one.
func TestLoadTrustProblems(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, make([]byte, DefaultJWKSFileMax+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key in an organization", "organizations: [{id: acme, nmae: Acme}]", []string{"organizations[acme].nmae: unknown key"}},
		{"unknown key in a pool without id", "pools: [{organisation: acme}]", []string{"pools[0].organisation: unknown key", "pools[0].id: required", "pools[0].organization: required"}},
		{"unknown key in a provider", `
pools:
  - id: ci
    organization: acme
    providers: [{id: github, issuer: https://x, audiences: [a], jwks: "{}"}]`, []string{"pools[ci].providers[github].jwks: unknown key"}},
		{"unknown key in the mapping", "pools: [{id: ci, organization: acme, mapping: {subjet: x}}]", []string{"pools[ci].mapping.subjet: unknown key"}},
		{"item not a mapping", "pools: [ci]", []string{"pools[0]: must be a mapping"}},
		{"bad ids and duplicates", `
organizations: [{id: Acme}, {id: a/b}]
pools:
  - {id: ci, organization: acme}
  - {id: ci, organization: acme, providers: [{id: p, issuer: https://x}, {id: p, audiences: [a]}]}`,
			[]string{"organizations[Acme].id: must be lower-case", "organizations[a/b].id: must be", "pools[ci].id: duplicate id",
				"pools[ci].providers[p].audiences: at least one", "pools[ci].providers[p].id: duplicate", "pools[ci].providers[p].issuer: required"}},
		{"lifetime above the key maximum", "pools: [{id: ci, organization: acme, max_token_lifetime: 24h}]", []string{"pools[ci].max_token_lifetime: must be between"}},
		{"bad scope", "pools: [{id: ci, organization: acme, scopes: [read, 'a b']}]", []string{"pools[ci].scopes[1]: a scope is"}},
		{"wrong type", "pools: [{id: ci, organization: acme, max_token_lifetime: soon}]", []string{"max_token_lifetime"}},
		{"missing jwks_file", "pools: [{id: ci, organization: acme, providers: [{id: p, issuer: https://x, audiences: [a], jwks_file: /nonexistent/jwks.json}]}]",
			[]string{"pools[ci].providers[p].jwks_file: open /nonexistent/jwks.json"}},
		{"oversized jwks_file", "pools: [{id: ci, organization: acme, providers: [{id: p, issuer: https://x, audiences: [a], jwks_file: " + big + "}]}]",
			[]string{"pools[ci].providers[p].jwks_file: " + big + " is larger than 256 KiB"}},
		{"unset variable in a list item", "pools: [{id: ci, organization: '${NOPE}'}]", []string{"pools[ci].organization: references unset environment variable NOPE"}},
		{"rate limits", "rate_limits: {per_ip: {rate: 5, burst: 0}, per_pool: {rate: -1, burst: 2}, max_keys: 0}",
			[]string{"rate_limits.max_keys: must be positive", "rate_limits.per_ip: set both", "rate_limits.per_pool: rate and burst must not be negative"}},
		{"verified token cache negative", "federation: {verified_token_cache: -1}", []string{"federation.verified_token_cache: must be between 0 (off) and 1000000, got -1"}},
		{"verified token cache too large", "federation: {verified_token_cache: 1000001}", []string{"federation.verified_token_cache: must be between"}},
		{"audit", "audit: {buffer: 10, batch: 20, flush_every: 0s}", []string{"audit.batch: must be between 1 and audit.buffer (10)", "audit.flush_every: must be a positive"}},
		{"audit mode and retention", "audit: {mode: always, retention: -1h}", []string{"audit.mode: ", "audit.retention: must not be negative"}},
		{"list where a record list belongs", "pools: {id: ci}", []string{"pools.id: unknown key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(Options{File: writeFile(t, tc.yaml), Environ: noEnv})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load = %v, want *Error", err)
			}
			for _, w := range tc.want {
				found := false
				for _, p := range cerr.Problems {
					found = found || strings.Contains(p.String(), w)
				}
				if !found {
					t.Errorf("no problem contains %q; got:\n%s", w, err)
				}
			}
		})
	}
}

func TestRecordListsAreFileOnly(t *testing.T) {
	m := envKeys()
	for _, name := range []string{"STS_POOLS", "STS_ORGANIZATIONS"} {
		if k, ok := m[name]; ok {
			t.Errorf("%s maps to key %q; record lists come only from the file", name, k)
		}
	}
	if m["STS_FEDERATION_ALLOW_LOOPBACK"] != "federation.allow_loopback" || m["STS_RATE_LIMITS_PER_IP_RATE"] != "rate_limits.per_ip.rate" {
		t.Error("federation/rate_limits keys have no environment names")
	}
	got, err := Load(Options{Environ: func() []string {
		return []string{"STS_RATE_LIMITS_PER_IP_RATE=7", "STS_FEDERATION_ALLOW_LOOPBACK=true"}
	}})
	if err != nil || got.RateLimits.PerIP.Rate != 7 || !got.Federation.AllowLoopback {
		t.Errorf("Load from env = %+v %+v, %v", got.RateLimits.PerIP, got.Federation, err)
	}
}
