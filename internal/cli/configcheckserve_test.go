package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/cli"
)

// TestConfigCheckRefusesWhatServeRefuses (docs/operations.md "sts config
// check", docs/security.md F-71): a pool whose CEL does not compile and a
// bad host-token integration are refused by sts config check as by sts
// serve, with the same message, exit 2 (restarting cannot fix them), and
// serve writes nothing first. config check read neither, and said the
// file was valid.
func TestConfigCheckRefusesWhatServeRefuses(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"cel": {`organizations:
  - {id: acme, name: Acme}
pools:
  - id: ci
    organization: acme
    condition: 'claims.sub == "x"'
    providers:
      - {id: k, issuer: https://k8s.example.com, audiences: [sts]}
`, "undeclared reference to 'claims'"},
		"integration": {`host_token_integrations:
  - {id: not-a-uuid, token_url: https://github.com/login/oauth/access_token, client_id: a}
`, `integration "not-a-uuid": the key must be the integration's UUID`},
		"integration twice": {`host_token_integrations:
  - {id: 0190c0de-aaaa-7bbb-8ccc-0123456789ab, token_url: https://github.com/login/oauth/access_token, client_id: a}
  - {id: 0190C0DE-AAAA-7BBB-8CCC-0123456789AB, token_url: https://github.com/login/oauth/access_token, client_id: b}
`, "is host_token_integrations[0]'s"},
		// docs/security.md F-77: a token endpoint the refresh client
		// would never call.
		"integration http": {`host_token_integrations:
  - {id: 0190c0de-aaaa-7bbb-8ccc-0123456789ab, token_url: http://github.example.com/login/oauth/access_token, client_id: a}
`, `token_url "http://github.example.com/login/oauth/access_token"`},
		"integration loopback http without allow_loopback": {`host_token_integrations:
  - {id: 0190c0de-aaaa-7bbb-8ccc-0123456789ab, token_url: "http://127.0.0.1:9/token", client_id: a}
`, `token_url "http://127.0.0.1:9/token"`},
	} {
		for _, args := range [][]string{{"config", "check"}, {"serve", "--listen", "127.0.0.1:0"}} {
			t.Run(name+"/"+args[0], func(t *testing.T) {
				t.Parallel()
				file := filepath.Join(t.TempDir(), "sts.yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				code, stderr := stsIn(t, dir, nil, append(args, "--config", file)...)
				if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
					t.Errorf("sts %s: exit %d, stderr %q; want %d and %q", strings.Join(args, " "), code, stderr, cli.ExitUsage, tc.want)
				}
				assertEmptyDir(t, dir)
			})
		}
	}
}

// TestServeUnreadableIntegrationSecretExit1: an integration's
// client_secret_file that cannot be read (a secret not mounted yet) is
// what a restart may fix, so serve exits 1, not 2 (docs/cli.md "Exit
// codes"), like a master key file it cannot read.
func TestServeUnreadableIntegrationSecretExit1(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sts.yaml")
	yaml := `host_token_integrations:
  - {id: 0190c0de-aaaa-7bbb-8ccc-0123456789ab, token_url: https://github.com/login/oauth/access_token, client_id: a, client_secret_file: /nonexistent/secret}
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr := stsIn(t, t.TempDir(), nil, "serve", "--listen", "127.0.0.1:0", "--config", file)
	if code != 1 || !strings.Contains(stderr, "client_secret_file") {
		t.Errorf("sts serve: exit %d, stderr %q; want 1 naming client_secret_file", code, stderr)
	}
	// An invalid entry beside it is what no restart fixes: exit 2.
	yaml += `  - {id: not-a-uuid, token_url: https://github.com/login/oauth/access_token, client_id: a}
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr = stsIn(t, t.TempDir(), nil, "serve", "--listen", "127.0.0.1:0", "--config", file)
	if code != cli.ExitUsage || !strings.Contains(stderr, "not-a-uuid") {
		t.Errorf("sts serve with an unreadable secret and an invalid entry: exit %d, stderr %q; want %d", code, stderr, cli.ExitUsage)
	}
}
