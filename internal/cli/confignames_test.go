package cli_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
)

// The configuration files of the name tests: a pool's display_name and a
// sign-in button's display_name (%s for the name), and an
// organization's name.
const (
	namedPool = `pools:
  - id: ci
    organization: acme
    display_name: %s
    providers:
      - {id: k, issuer: https://k8s.example.com, audiences: [sts]}
`
	namedButton = `web:
  login:
    oidc:
      - {id: corp, display_name: %s, issuer: https://idp.example.com, client_id: sts, link_claim: email}
`
)

func namedOrg(name string) string { return "organizations:\n  - {id: acme, name: " + name + "}\n" }

// TestConfigRefusesAnInvisibleName (docs/security.md T-135): a name the
// file sets for people to read (an organization's name, a pool's
// display_name, a sign-in button's display_name) follows the rule the API,
// the CLI and the pages apply: sts config check and sts serve refuse a
// bidi control or other invisible character, exit 2, naming the key and
// the character, and serve writes nothing. An emoji subdivision flag
// passes, as it does there.
func TestConfigRefusesAnInvisibleName(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"organization name": {namedOrg(`"Acme\u202Eevil"`),
			"organizations[acme].name: U+202E is not allowed"},
		"organization without id": {"organizations:\n  - {name: \"Acme\\u2066\"}\n",
			"organizations[0].name: U+2066 is not allowed"},
		"pool display_name": {namedOrg("Acme") + strings.Replace(namedPool, "%s", `"CI\u200Bbuilds"`, 1),
			"pools[ci].display_name: U+200B is not allowed"},
		"button display_name": {strings.Replace(namedButton, "%s", `"Corp\u061C"`, 1),
			"web.login.oidc[corp].display_name: U+061C is not allowed"},
		"stray tag": {namedOrg(`"Acme\U000E0041"`),
			"organizations[acme].name: U+E0041 is not allowed"},
	} {
		for _, args := range [][]string{{"config", "check"}, {"serve", "--listen", "127.0.0.1:0"}} {
			t.Run(name+"/"+args[0], func(t *testing.T) {
				t.Parallel()
				file := filepath.Join(t.TempDir(), "sts.yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				code, stderr := stsWithin(t, 30*time.Second, dir, append(args, "--config", file)...)
				if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
					t.Errorf("sts %s: exit %d, stderr %q; want %d and %q", strings.Join(args, " "), code, stderr, cli.ExitUsage, tc.want)
				}
				assertEmptyDir(t, dir)
			})
		}
	}

	// Names in any script, ZWJ emoji and a subdivision flag are kept.
	file := filepath.Join(t.TempDir(), "sts.yaml")
	yaml := namedOrg(`"Acme \U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"`) +
		strings.Replace(namedPool, "%s", `"می\u200Cخواهم 👩\u200D💻"`, 1) +
		strings.Replace(namedButton, "%s", "Ωmega", 1)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stderr := stsIn(t, t.TempDir(), nil, "config", "check", "--config", file); code != 0 {
		t.Errorf("sts config check with names the rule keeps: exit %d, stderr %q", code, stderr)
	}
}

// TestConfigRefusesALongName (docs/security.md T-138): a name the file
// sets for people to read is held to the API's length limit as well as its
// characters: at most sts.MaxNameBytes bytes for an organization's name, a
// pool's display_name and a sign-in button's display_name. sts config
// check and sts serve refuse a longer one, exit 2, naming the key and the
// limit, and serve writes nothing. A name of exactly the limit, counted in
// bytes of multi-byte text, passes.
func TestConfigRefusesALongName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100) + "x" // 201 bytes, 101 characters
	for name, tc := range map[string]struct{ yaml, want string }{
		"organization name": {namedOrg(long),
			"organizations[acme].name: at most 200 bytes, got 201"},
		"pool display_name": {namedOrg("Acme") + strings.Replace(namedPool, "%s", long, 1),
			"pools[ci].display_name: at most 200 bytes, got 201"},
		"button display_name": {strings.Replace(namedButton, "%s", long, 1),
			"web.login.oidc[corp].display_name: at most 200 bytes, got 201"},
	} {
		for _, args := range [][]string{{"config", "check"}, {"serve", "--listen", "127.0.0.1:0"}} {
			t.Run(name+"/"+args[0], func(t *testing.T) {
				t.Parallel()
				file := filepath.Join(t.TempDir(), "sts.yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				code, stderr := stsWithin(t, 30*time.Second, dir, append(args, "--config", file)...)
				if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
					t.Errorf("sts %s: exit %d, stderr %q; want %d and %q", strings.Join(args, " "), code, stderr, cli.ExitUsage, tc.want)
				}
				assertEmptyDir(t, dir)
			})
		}
	}

	// Exactly the limit passes everywhere.
	limit := strings.Repeat("é", 100) // 200 bytes
	file := filepath.Join(t.TempDir(), "sts.yaml")
	yaml := namedOrg(limit) + strings.Replace(namedPool, "%s", limit, 1) + strings.Replace(namedButton, "%s", limit, 1)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stderr := stsIn(t, t.TempDir(), nil, "config", "check", "--config", file); code != 0 {
		t.Errorf("sts config check with names of exactly 200 bytes: exit %d, stderr %q", code, stderr)
	}
}

// stsWithin is stsIn without environment for a command that may not end
// by itself (sts serve accepting the file): a child still running after d
// is killed and the test fails.
func stsWithin(t *testing.T, d time.Duration, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := stsCommand(args...)
	cmd.Dir = dir
	cmd.Env = []string{reexecEnv + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(d, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	if !timer.Stop() {
		t.Fatalf("sts %s still running after %s; stderr %q", strings.Join(args, " "), d, stderr.String())
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}
