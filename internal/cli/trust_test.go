package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/cli"
)

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
	t.Parallel()
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
	t.Parallel()
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

// TestServeKeepsPoolDisabledOutsideTheFile: a pool and provider disabled
// with the CLI during an incident stay disabled across a restart that
// applies the file (which says enabled): the start logs a warning naming
// each with the command that enables it, and the organization's audit
// list shows the file's changes (docs/security.md A-55).
func TestServeKeepsPoolDisabledOutsideTheFile(t *testing.T) {
	t.Parallel()
	dir, file := t.TempDir(), writeConfig(t, exampleYAML)
	start := func(i int) string {
		t.Helper()
		r := serve(t, "--config", file, "--data-dir", dir)
		r.waitFor(t, "/readyz", 200)
		if code := r.stop(t); code != 0 {
			t.Fatalf("run %d: exit %d", i, code)
		}
		return r.stderr.String()
	}
	start(0)
	mustCLI(t, "pool", "disable", "ci", "--data-dir", dir)
	mustCLI(t, "provider", "disable", "github", "--pool", "ci", "--data-dir", dir)
	file = writeConfig(t, strings.Replace(exampleYAML, "scopes: [read, write]", "scopes: [read]", 1))
	logs := start(1)
	for _, want := range []string{
		"pool ci is disabled in storage; the file's enabled state is not applied; `sts pool enable ci` to enable it",
		"provider ci/github is disabled in storage; the file's enabled state is not applied; `sts provider enable github --pool ci` to enable it",
	} {
		if !strings.Contains(logs, `"level":"WARN","msg":"`+want) {
			t.Errorf("restart log lacks the warning %q:\n%s", want, logs)
		}
	}
	if out := mustCLI(t, "pool", "list", "--data-dir", dir); !strings.Contains(out, "disabled") {
		t.Errorf("pool list after the restart (want ci disabled):\n%s", out)
	}
	if out := mustCLI(t, "provider", "list", "--data-dir", dir); !strings.Contains(out, "github  disabled") {
		t.Errorf("provider list after the restart (want github disabled):\n%s", out)
	}
	out := mustCLI(t, "audit", "list", "--org", "acme", "--actor", "config", "--action", "pool.update", "--data-dir", dir)
	if !strings.Contains(out, "changed scopes") {
		t.Errorf("the organization's audit list lacks the file's scopes change:\n%s", out)
	}
}
