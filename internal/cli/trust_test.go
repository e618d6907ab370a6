package cli_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest"
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
		{"bad uploaded jwks", func(c *config.Config) { c.Pools[0].Providers[0].JWKS = []byte(`{"keys":1}`) },
			[]string{`pools[ci].providers[github]: uploaded jwks`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := examplePools()
			tc.change(&cfg)
			err := cli.CheckTrust(cfg)
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
	if err := cli.CheckTrust(cfg); err != nil {
		t.Errorf("loopback http issuer with allow_loopback: %v", err)
	}
}

// testApply: applying twice changes nothing the second time, an edit is an
// update, and records the file does not declare are left alone.
func testApply(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// A pool created with the CLI, not in the file.
	if err := s.CreateOrganization(ctx, storage.Organization{ID: "other", Name: "Other", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePool(ctx, storage.Pool{ID: "manual", OrgID: "other", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	created, updated, unchanged, err := cli.ApplyTrust(ctx, s, examplePools(), now)
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if want := []string{"org/acme", "pool/ci", "provider/ci/github"}; !slices.Equal(created, want) || len(updated) != 0 {
		t.Errorf("first apply created %v updated %v, want created %v", created, updated, want)
	}
	created, updated, unchanged, err = cli.ApplyTrust(ctx, s, examplePools(), now.Add(time.Hour))
	if err != nil || len(created)+len(updated) != 0 || unchanged != 3 {
		t.Errorf("second apply created %v updated %v unchanged %d, %v; want nothing changed", created, updated, unchanged, err)
	}

	cfg := examplePools()
	cfg.Pools[0].Condition = `assertion.repository_owner == "acme" && assertion.ref == "refs/heads/main"`
	cfg.Pools[0].Providers[0].Audiences = []string{"sts", "sts2"}
	created, updated, _, err = cli.ApplyTrust(ctx, s, cfg, now.Add(2*time.Hour))
	if err != nil || !slices.Equal(updated, []string{"pool/ci", "provider/ci/github"}) || len(created) != 0 {
		t.Errorf("apply after an edit: created %v updated %v, %v", created, updated, err)
	}
	p, err := s.GetPool(ctx, "ci")
	if err != nil || p.Condition != cfg.Pools[0].Condition || !p.CreatedAt.Equal(now) || !p.UpdatedAt.Equal(now.Add(2*time.Hour)) {
		t.Errorf("pool after update = %+v, %v", p, err)
	}
	if _, err := s.GetPool(ctx, "manual"); err != nil {
		t.Errorf("a pool not in the file was touched: %v", err)
	}
	evs, err := s.ListAudit(ctx, storage.AuditFilter{})
	if err != nil || len(evs) != 5 {
		t.Errorf("audit events = %d, %v; want 3 creations and 2 updates", len(evs), err)
	}

	// A pool whose organization exists nowhere is refused by name.
	cfg = examplePools()
	cfg.Organizations = nil
	cfg.Pools[0].Organization = "ghost"
	if _, _, _, err := cli.ApplyTrust(ctx, s, cfg, now); err == nil || !strings.Contains(err.Error(), `pools[ci].organization: organization "ghost" does not exist`) {
		t.Errorf("apply with an unknown organization = %v", err)
	}
}

func TestApplyTrustSQLite(t *testing.T) { testApply(t, ststest.NewStore(t)) }

func TestApplyTrustPostgres(t *testing.T) {
	dsn := ststest.PostgresDSN(t)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	testApply(t, s)
}

const exampleYAML = `
organizations:
  - {id: acme, name: Acme, tier: enterprise}
pools:
  - id: ci
    organization: acme
    condition: 'assertion.repository_owner == "acme"'
    mapping: {subject: 'assertion.sub', attributes: {repo: 'assertion.repository'}}
    scopes: [read, write]
    max_token_lifetime: 1h
    providers:
      - id: github
        issuer: https://token.actions.githubusercontent.com
        audiences: [sts]
        jwks_uri: ""
        jwks_file: ""
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeAppliesTrust: serve applies the README's example at start, a
// restart changes nothing, and the pool is then visible to the CLI.
func TestServeAppliesTrust(t *testing.T) {
	dir, file := t.TempDir(), writeConfig(t, exampleYAML)
	for i, want := range []string{"applied trust configuration", "trust configuration unchanged"} {
		r := serve(t, "--config", file, "--data-dir", dir)
		r.waitFor(t, "/readyz", 200)
		if code := r.stop(t); code != 0 {
			t.Fatalf("run %d: exit %d", i, code)
		}
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("run %d: log lacks %q:\n%s", i, want, r.stderr.String())
		}
	}
	if out := mustCLI(t, "pool", "list", "--data-dir", dir); !strings.Contains(out, "ci  acme") {
		t.Errorf("pool list after serve:\n%s", out)
	}
}

// TestServeRefusesInvalidTrust: an invalid CEL expression or a shared
// issuer without a condition stops start-up with exit 2, naming the pool,
// before anything is written.
func TestServeRefusesInvalidTrust(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"invalid CEL", `'assertion.repository_owner == "acme"'`, `'assertion.repository_owner =='`, `pools[ci].condition: pool "ci"`},
		{"shared issuer without condition", `condition: 'assertion.repository_owner == "acme"'`, "", `pools[ci].condition: pool "ci": required`},
		{"unknown key in a provider", `jwks_file: ""`, `jwks_fil: ""`, `pools[ci].providers[github].jwks_fil: unknown key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			code, _, errOut := runCLI(t, "serve", "--config", writeConfig(t, strings.Replace(exampleYAML, tc.from, tc.to, 1)), "--data-dir", dir)
			if code != cli.ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("serve = %d, %q; want exit 2 naming %q", code, errOut, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "sts.db")); err == nil {
				t.Error("a database was created despite the invalid configuration")
			}
		})
	}
}
