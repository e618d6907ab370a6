package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ststest/rsatest"
)

// TestPoolTestFromConfigFile: `sts pool test --config FILE` evaluates a
// pool declared in the file with no server and no database: nothing is
// created in data_dir.
func TestPoolTestFromConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := rsatest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwksFile, jwks, 0o600)
	file := filepath.Join(dir, "sts.yaml")
	yaml := `issuer: https://sts.example
organizations:
  - {id: acme, name: Acme}
pools:
  - id: ci
    organization: acme
    condition: 'assertion.repository_owner == "acme"'
    mapping: {subject: 'assertion.sub', attributes: {repo: 'assertion.repository'}}
    scopes: [read, deploy]
    max_token_lifetime: 1h
    providers:
      - {id: github, issuer: https://issuer.example, audiences: [sts], jwks_file: ` + jwksFile + `}
`
	os.WriteFile(file, []byte(yaml), 0o600)
	sign := func(owner string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
		now := time.Now()
		tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: "https://issuer.example", Subject: "repo:acme/app", Audience: jwt.Audience{"sts"},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).
			Claims(map[string]any{"repository_owner": owner, "repository": owner + "/app"}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "token.jwt")
		os.WriteFile(f, []byte(tok+"\n"), 0o600)
		return f
	}
	data := filepath.Join(dir, "data") // never created
	code, out, errOut := runCLI(t, "pool", "test", "--config", file, "--data-dir", data, "--pool", "ci", "--token", sign("acme"))
	if code != 0 || !strings.Contains(out, `ALLOWED subject "repo:acme/app"`) || !strings.Contains(out, "condition       ok") {
		t.Errorf("pool test --config (allowed) = %d:\n%s%s", code, out, errOut)
	}
	// With no --scope and no --audience, the condition judges what the
	// exchange would issue: the pool's scopes and the issuer (T-185).
	if want := `request         ok     scope ["read" "deploy"], audience ["https://sts.example"]`; !strings.Contains(out, want) {
		t.Errorf("pool test --config lacks %q:\n%s", want, out)
	}
	code, out, _ = runCLI(t, "pool", "test", "--config", file, "--data-dir", data, "--pool", "ci", "--token", sign("evil"))
	if code != 1 || !strings.Contains(out, "DENIED reason condition_false") {
		t.Errorf("pool test --config (denied) = %d:\n%s", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("pool test --config touched data_dir (%v)", err)
	}
}

// TestPoolShowRoundTrips: `sts pool show` prints a pool in the shape of
// sts.yaml: pasted under pools:, it loads as a configuration and declares
// the same pool and providers (docs/configuration.md).
func TestPoolShowRoundTrips(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	d := []string{"--data-dir", dir}
	cli := func(args ...string) []string { return append(args, d...) }
	key, _ := rsatest.NewKey()
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(jwksFile, jwks, 0o600)
	mustCLI(t, cli("pool", "create", "ci", "--organization", "acme", "--condition", `assertion.repository_owner == "acme"`,
		"--attribute", "repo=assertion.repository", "--scopes", "read,write", "--max-token-lifetime", "2h")...)
	mustCLI(t, cli("provider", "create", "gh", "--pool", "ci", "--issuer", "https://issuer.example", "--audience", "sts", "--jwks-file", jwksFile)...)
	mustCLI(t, cli("provider", "create", "gl", "--pool", "ci", "--issuer", "https://gitlab.example", "--audience", "sts2")...)
	shown := mustCLI(t, cli("pool", "show", "ci")...)

	var doc strings.Builder
	doc.WriteString("pools:\n")
	for i, l := range strings.Split(strings.TrimRight(shown, "\n"), "\n") {
		if i == 0 {
			doc.WriteString("  - " + l + "\n")
		} else {
			doc.WriteString("    " + l + "\n")
		}
	}
	file := filepath.Join(t.TempDir(), "sts.yaml")
	os.WriteFile(file, []byte(doc.String()), 0o600)
	cfg, err := config.Load(config.Options{File: file, Environ: func() []string { return nil }})
	if err != nil {
		t.Fatalf("pool show output does not load as sts.yaml: %v\n%s", err, doc.String())
	}
	if len(cfg.Pools) != 1 {
		t.Fatalf("pools = %+v", cfg.Pools)
	}
	p := cfg.Pools[0]
	if p.ID != "ci" || p.Organization != "acme" || p.Condition != `assertion.repository_owner == "acme"` ||
		p.Mapping.Attributes["repo"] != "assertion.repository" || strings.Join(p.Scopes, ",") != "read,write" ||
		p.MaxTokenLifetime != 2*time.Hour || len(p.Providers) != 2 {
		t.Errorf("round-tripped pool = %+v\n%s", p, shown)
	}
	for _, pr := range p.Providers {
		if pr.ID == "gl" && (pr.Issuer != "https://gitlab.example" || strings.Join(pr.Audiences, ",") != "sts2") {
			t.Errorf("round-tripped provider = %+v", pr)
		}
	}
	if !strings.Contains(shown, "jwks") {
		t.Errorf("pool show no longer says the gh provider has an uploaded JWKS:\n%s", shown)
	}
}

// TestDurationFlagsTakeDays: command-line durations take the
// configuration's syntax, d included, and a bad one names the format.
func TestDurationFlagsTakeDays(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	code, _, errOut := runCLI(t, "pool", "create", "ci", "--organization", "acme", "--max-token-lifetime", "soon", "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "--max-token-lifetime") || !strings.Contains(errOut, "30d") {
		t.Errorf("bad duration flag = %d, %q; want 2 naming the flag and the accepted format", code, errOut)
	}
	mustCLI(t, "keys", "generate-master", "--out", filepath.Join(dir, "master.key"))
	mustCLI(t, "principal", "create", "--org", "acme", "--name", "ada", "--data-dir", dir)
	out := mustCLI(t, "pat", "create", "--user", "ada", "--expires-in", "1d12h", "--scope", "*", "--data-dir", dir)
	if patRE.FindString(out) == "" {
		t.Errorf("pat create --expires-in 1d12h: %s", out)
	}
	mustCLI(t, "pool", "create", "ci", "--organization", "acme", "--max-token-lifetime", "0d", "--data-dir", dir)
}
