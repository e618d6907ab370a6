package cli_test

import (
	"strings"
	"testing"
)

// TestSecretsOnStdoutNotesOnStderr (docs/cli.md "Output"): a command that
// shows a secret once prints the secret on stdout, so that it can be
// piped or captured, and its human note ("shown once…") on stderr, for
// clients as for PATs and exchange tokens.
func TestSecretsOnStdoutNotesOnStderr(t *testing.T) {
	s := startAdminServer(t)
	sa := newServiceAccount(t, s.dir, "notes")
	id, _ := newClient(t, s.dir, sa, s.r.base, "read")
	for _, args := range [][]string{
		{"client", "create", "--org", "default", "--principal", sa, "--audience", s.r.base},
		{"client", "rotate-secret", id},
		{"pat", "create", "--user", "admin", "--expires-in", "1d", "--scope", "*"},
		{"exchange-token", "create", "--principal", "admin"},
	} {
		code, out, errOut := runCLI(t, append(args, "--data-dir", s.dir)...)
		if code != 0 {
			t.Fatalf("sts %v = %d %q %q", args, code, out, errOut)
		}
		for _, note := range []string{"shown", "store", "expires", "no longer works"} {
			if strings.Contains(out, note) {
				t.Errorf("sts %v: stdout %q carries a note (%q); want it on stderr", args, out, note)
			}
		}
		if errOut == "" {
			t.Errorf("sts %v: no note on stderr", args)
		}
	}
}
