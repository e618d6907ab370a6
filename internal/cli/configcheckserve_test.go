package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

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
		// docs/security.md T-189: an upstream sign-in issuer the
		// outbound client would refuse, named by its key.
		"web issuer metadata": {`web:
  login:
    oidc:
      - {id: corp, issuer: "https://169.254.169.254/", client_id: sts-web, link_claim: email}
`, "web.login.oidc[corp].issuer"},
		"web issuer private without allow_private": {`web:
  login:
    oidc:
      - {id: corp, issuer: "https://10.0.0.5/realms/corp", client_id: sts-web, link_claim: email}
`, "web.login.oidc[corp].issuer: federation: address refused: 10.0.0.5 is a private address"},
		// docs/security.md F-83: the whole IPv4-mapped range would be
		// 0.0.0.0/0, and a mapped CIDR shorter than /96 matches nothing.
		"trusted proxies mapped /96": {"http: {trusted_proxies: [\"10.0.0.0/8\", \"::ffff:0:0/96\"]}\n",
			`http.trusted_proxies: [1] "::ffff:0:0/96" means 0.0.0.0/0`},
		"trusted proxies mapped /95": {"http: {trusted_proxies: [\"::ffff:0:0/95\"]}\n",
			`"::ffff:0:0/95" is an IPv4-mapped CIDR shorter than /96`},
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

// TestConfigCheckShowsTrustedProxiesAsRead (docs/security.md F-83): sts
// config check prints each http.trusted_proxies CIDR as sts will read it,
// an IPv4-mapped one in its IPv4 form and every one masked, naming what
// was written beside one that changed, so that an operator sees what is
// trusted rather than what was typed.
func TestConfigCheckShowsTrustedProxiesAsRead(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sts.yaml")
	yml := "http: {trusted_proxies: [\"::ffff:10.0.0.0/104\", \" 10.1.2.3/16\", \"::1/128\", \"::ffff:192.0.2.5/128\"]}\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mainIn(t, "config", "check", "--config", file)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var cfg struct {
		HTTP struct {
			TrustedProxies []string `yaml:"trusted_proxies"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("config check printed no YAML: %v\n%s", err, out)
	}
	want := []string{"10.0.0.0/8", "10.1.0.0/16", "::1/128", "192.0.2.5/32"}
	if diff := cmp.Diff(want, cfg.HTTP.TrustedProxies); diff != "" {
		t.Errorf("config check's http.trusted_proxies (-want +got):\n%s\n%s", diff, out)
	}
	for _, written := range []string{"::ffff:10.0.0.0/104", "10.1.2.3/16", "::ffff:192.0.2.5/128"} {
		if !strings.Contains(out, "written "+written) {
			t.Errorf("config check does not say %s was written:\n%s", written, out)
		}
	}
}
