package cli_test

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/cli"
)

// TestUsageErrorsOfNouns: a script that mistypes a subcommand, forgets an
// argument or a required flag gets exit 2 and one "sts: …" line on
// stderr, never exit 0 with the help on stdout, nor 1 as for a refusal
// (docs/cli.md: "Bad flags exit 2"). Nothing opens the database.
func TestUsageErrorsOfNouns(t *testing.T) {
	t.Setenv("STS_SERVER", "")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"org", "lsit"}, `unknown command "lsit" for "sts org"`},
		{[]string{"pool", "craete", "ci"}, `unknown command "craete" for "sts pool"`},
		{[]string{"keys", "rotat"}, `unknown command "rotat" for "sts keys"`},
		{[]string{"org", "show"}, "accepts 1 arg(s), received 0"},
		{[]string{"pool", "create"}, "accepts 1 arg(s), received 0"},
		{[]string{"org", "list", "extra"}, `unknown command "extra" for "sts org list"`},
		{[]string{"principal", "create", "--org", "acme"}, `required flag(s) "name" not set`},
	} {
		code, out, errOut := runCLI(t, append(tc.args, "--data-dir", dir)...)
		if code != cli.ExitUsage || out != "" || !strings.HasPrefix(errOut, "sts: ") || !strings.Contains(errOut, tc.want) {
			t.Errorf("sts %v = %d, stdout %q, stderr %q; want %d and %q on stderr only", tc.args, code, out, errOut, cli.ExitUsage, tc.want)
		}
	}
	// A noun alone still shows its help, successfully.
	if code, out, _ := runCLI(t, "org"); code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Errorf("sts org = %d %q, want its help", code, out)
	}
}
