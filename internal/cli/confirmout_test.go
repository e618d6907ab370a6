package cli_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestConfirmationsOnStderr (docs/cli.md "Output"): every command that
// changes something prints its confirmation ("deleted …", "updated …",
// "revoked …") on stderr, and on stdout only what a script may capture: an
// ID, a secret, a link, or with --output json one JSON object. A script
// that runs `x=$(sts … delete …)` or pipes a command to jq gets no prose.
func TestConfirmationsOnStderr(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_SERVER", "")
	s := startAdminServer(t)
	tmp := t.TempDir()
	id := regexp.MustCompile(`^[0-9A-Za-z_-]+\n$`)
	var (
		out   string
		runID = func(args ...string) string { // a command whose stdout is one ID
			t.Helper()
			return strings.TrimSpace(confirm(t, id, append(args, "--data-dir", s.dir)...))
		}
		quiet = func(args ...string) { // a command whose stdout is empty
			t.Helper()
			confirm(t, nil, append(args, "--data-dir", s.dir)...)
		}
	)
	quiet("migrate")
	quiet("backup", filepath.Join(tmp, "backup.db"))
	org := runID("org", "create", "--name", "confirm")
	quiet("org", "delete", org)
	sa := runID("principal", "create", "--org", "default", "--kind", "service-account", "--name", "confirm-sa")
	cid, _ := newClient(t, s.dir, sa, s.r.base, "read")
	quiet("client", "update", cid, "--name", "renamed")
	quiet("client", "disable", cid)
	quiet("client", "enable", cid)
	quiet("client", "delete", cid)

	code, out, errOut := runCLI(t, "pat", "create", "--data-dir", s.dir, "--user", "admin", "--expires-in", "1d", "--scope", "*")
	if code != 0 || !patRE.MatchString(out) {
		t.Fatalf("pat create = %d %q %q", code, out, errOut)
	}
	var pats []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, "pat", "list", "--user", "admin", "-o", "json", "--data-dir", s.dir)), &pats); err != nil || len(pats) == 0 {
		t.Fatalf("pat list -o json: %v", err)
	}
	quiet("pat", "revoke", pats[0]["id"].(string))

	quiet("pool", "create", "ci", "--org", s.orgID, "--condition", `assertion.repository_owner == "acme"`, "--scope", "read")
	quiet("pool", "update", "ci", "--scope", "read,write")
	quiet("pool", "disable", "ci")
	quiet("pool", "enable", "ci")
	quiet("provider", "create", "github", "--pool", "ci", "--issuer", "https://token.actions.githubusercontent.com", "--audience", "sts")
	quiet("provider", "update", "github", "--pool", "ci", "--audience", "sts,other")
	quiet("provider", "disable", "github", "--pool", "ci")
	quiet("provider", "enable", "github", "--pool", "ci")
	quiet("provider", "delete", "github", "--pool", "ci")
	quiet("pool", "delete", "ci")

	quiet("revoke", "subject", "--subject", "repo:acme/app:ref:refs/heads/main")
	quiet("keys", "rotate", "--force")
	var keys []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, "keys", "list", "-o", "json", "--data-dir", s.dir)), &keys); err != nil {
		t.Fatalf("keys list -o json: %v", err)
	}
	for _, k := range keys {
		if k["state"] == "next" {
			quiet("keys", "revoke", "--kid="+k["kid"].(string))
			break
		}
	}

	runID("principal", "create", "--org", "default", "--kind", "runner", "--name", "confirm-runner")
	pub := confirm(t, regexp.MustCompile(`^[A-Za-z0-9+/]{43}=\n$`), "runner", "keygen", "--private-key-file", filepath.Join(tmp, "runner.key"))
	quiet("runner", "set-key", "--runner", "confirm-runner", "--public-key", strings.TrimSpace(pub))

	confirm(t, nil, "keys", "generate-master", "--out", filepath.Join(tmp, "new.key"))
	confirm(t, nil, "bench", "keygen", "--key", filepath.Join(tmp, "bench.pem"), "--jwks", filepath.Join(tmp, "bench.jwks"))

	// With --output json, the writes that print an object print one.
	for _, args := range [][]string{
		{"client", "create", "--org", "default", "--principal", sa, "--audience", s.r.base},
		{"runner", "set-key", "--runner", "confirm-runner", "--public-key", strings.TrimSpace(pub)},
		{"revoke", "subject", "--subject", "x"},
	} {
		var v map[string]any
		if out := mustCLI(t, append(args, "-o", "json", "--data-dir", s.dir)...); json.Unmarshal([]byte(out), &v) != nil {
			t.Errorf("sts %v -o json: stdout is not one JSON object: %q", args, out)
		}
	}
}

// confirm runs a command that must succeed and print a confirmation on
// stderr (stdout nil: stdout empty), or print only what matches stdout
// there. It returns stdout.
func confirm(t *testing.T, stdout *regexp.Regexp, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	switch {
	case code != 0:
		t.Errorf("sts %s = %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	case stdout == nil && out != "":
		t.Errorf("sts %s: stdout %q, want it empty (the confirmation on stderr)", strings.Join(args[:2], " "), out)
	case stdout != nil && !stdout.MatchString(out):
		t.Errorf("sts %s: stdout %q, want %v", strings.Join(args[:2], " "), out, stdout)
	case stdout == nil && strings.TrimSpace(errOut) == "":
		t.Errorf("sts %s: no confirmation on stderr", strings.Join(args[:2], " "))
	}
	return out
}
