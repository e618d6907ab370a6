package app_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
)

func examplePools() config.Config {
	cfg := config.DefaultConfig()
	cfg.Organizations = []config.OrganizationConfig{{ID: "acme", Name: "Acme", Tier: "enterprise"}}
	cfg.Pools = []config.PoolConfig{{
		ID: "ci", Organization: "acme",
		Condition: `assertion.repository_owner == "acme"`,
		Mapping:   config.MappingConfig{Subject: "assertion.sub", Attributes: map[string]string{"repo": "assertion.repository"}},
		Scopes:    []string{"read", "write"}, MaxTokenLifetime: time.Hour,
		Providers: []config.ProviderConfig{{ID: "github", Issuer: "https://token.actions.githubusercontent.com", Audiences: []string{"sts"}}},
	}}
	return cfg
}

func TestPlanTrustProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"invalid CEL names the pool and field", func(c *config.Config) { c.Pools[0].Condition = "assertion.repository_owner ==" },
			[]string{`pools[ci].condition: pool "ci": `}},
		{"mapping of the wrong type", func(c *config.Config) { c.Pools[0].Mapping.Attributes["n"] = "1 + 2" },
			[]string{`pools[ci].mapping.attributes.n: pool "ci": expression has type int`}},
		{"shared issuer without a condition", func(c *config.Config) { c.Pools[0].Condition = "" },
			[]string{`pools[ci].condition: pool "ci": required because provider "github" trusts https://token.actions.githubusercontent.com`}},
		{"http issuer without allow_loopback", func(c *config.Config) { c.Pools[0].Providers[0].Issuer = "http://127.0.0.1:9000" },
			[]string{`pools[ci].providers[github]: issuer "http://127.0.0.1:9000" must use https`}},
		{"http issuer off loopback", func(c *config.Config) {
			c.Federation.AllowLoopback = true
			c.Pools[0].Providers[0].Issuer = "http://issuer.example"
		}, []string{`pools[ci].providers[github]: "http://issuer.example": plain http is allowed only to a loopback address`}},
		{"a scope no pool grants", func(c *config.Config) { c.Pools[0].Scopes = []string{"read", "introspect"} },
			[]string{`pools[ci].scopes[1]: pool "ci": "introspect": a pool never grants it`}},
		{"T-151 offline_access in google_default_scopes", func(c *config.Config) {
			c.Pools[0].Scopes = []string{"read", "offline_access"}
			c.Pools[0].GoogleDefaultScopes = []string{"read", "offline_access"}
		}, []string{`pools[ci].google_default_scopes[1]: pool "ci": "offline_access": a default scope never holds it`}},
		{"bad uploaded jwks", func(c *config.Config) { c.Pools[0].Providers[0].JWKS = []byte(`{"keys":1}`) },
			[]string{`pools[ci].providers[github]: uploaded jwks`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := examplePools()
			tc.change(&cfg)
			err := app.CheckTrust(cfg)
			cerr, ok := errors.AsType[*config.Error](err)
			if !ok {
				t.Fatalf("planTrust = %v, want *config.Error", err)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(cerr.Problems, func(p config.Problem) bool { return strings.Contains(p.String(), w) }) {
					t.Errorf("no problem contains %q; got %v", w, err)
				}
			}
		})
	}
	cfg := examplePools()
	cfg.Federation.AllowLoopback = true
	cfg.Pools[0].Providers[0].Issuer = "http://127.0.0.1:9000"
	if err := app.CheckTrust(cfg); err != nil {
		t.Errorf("loopback http issuer with allow_loopback: %v", err)
	}
}
