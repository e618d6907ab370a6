package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestUsageErrorsOfNouns: a script that mistypes a subcommand, forgets an
// argument or a required flag gets exit 2 and one "sts: …" line on
// stderr, never exit 0 with the help on stdout, nor 1 as for a refusal
// (docs/cli.md: "Bad flags exit 2"). Nothing opens the database.
func TestUsageErrorsOfNouns(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_SERVER", "")
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

// TestPoolWritesPrintJSON: with --output json every pool and provider
// create, update, enable and disable prints one JSON object, the API's
// Pool or Provider as it now is (docs/cli.md "Output"), as the other
// nouns' writes do; a script pipes it to jq.
func TestPoolWritesPrintJSON(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_SERVER", "")
	dir := trustDir(t)
	object := func(args ...string) map[string]any {
		t.Helper()
		out := mustCLI(t, append(args, "--data-dir", dir, "-o", "json")...)
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("sts %v -o json: stdout is not one JSON object: %v\n%s", args, err, out)
		}
		return v
	}
	p := object("pool", "create", "ci", "--org", "acme", "--condition", `assertion.repository_owner == "acme"`, "--scope", "read")
	if p["id"] != "ci" || p["organizationId"] != "acme" || p["disabled"] != false {
		t.Errorf("pool create = %v", p)
	}
	if p = object("pool", "update", "ci", "--scope", "read", "--scope", "write"); len(p["scopes"].([]any)) != 2 {
		t.Errorf("pool update = %v, want both scopes", p)
	}
	if p = object("pool", "disable", "ci"); p["disabled"] != true {
		t.Errorf("pool disable = %v", p)
	}
	if p = object("pool", "enable", "ci"); p["disabled"] != false {
		t.Errorf("pool enable = %v", p)
	}
	v := object("provider", "create", "github", "--pool", "ci", "--issuer", "https://token.actions.githubusercontent.com", "--audience", "sts")
	if v["id"] != "github" || v["poolId"] != "ci" || v["issuer"] != "https://token.actions.githubusercontent.com" {
		t.Errorf("provider create = %v", v)
	}
	if v = object("provider", "update", "github", "--pool", "ci", "--audience", "sts,other"); len(v["audiences"].([]any)) != 2 {
		t.Errorf("provider update = %v, want both audiences", v)
	}
	if v = object("provider", "disable", "github", "--pool", "ci"); v["disabled"] != true {
		t.Errorf("provider disable = %v", v)
	}
	if v = object("provider", "enable", "github", "--pool", "ci"); v["disabled"] != false {
		t.Errorf("provider enable = %v", v)
	}
	// The table form keeps its sentence, on stderr.
	if _, out, e := runCLI(t, "pool", "disable", "ci", "--data-dir", dir); out != "" || e != "disabled pool ci\n" {
		t.Errorf("pool disable (table) = %q, %q; want its sentence on stderr", out, e)
	}
}

// TestAuditListShowsWhereFrom: `sts audit list` prints the address a
// change came from in its CLIENT IP column, and --json carries clientIp
// and userAgent, the fields `sts audit export` and --output json print
// (docs/operations.md, Audit export); they were dropped on the way to
// the table and the JSON lines, in both modes.
func TestAuditListShowsWhereFrom(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_SERVER", "")
	dir := trustDir(t)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(dir, "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	ev := storage.AuditEvent{ID: "e1", Time: time.Now().UTC(), OrgID: "acme", Actor: "principal:p", Action: "client.create",
		Target: "client:c", Outcome: "success", ClientIP: "192.0.2.7", UserAgent: "deploy-script/1.0"}
	err = s.AppendAudit(t.Context(), ev)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "audit", "list", "--action", "client.create", "--data-dir", dir)
	if !strings.Contains(out, "192.0.2.7") {
		t.Errorf("audit list (table) lacks the client IP:\n%s", out)
	}
	out = mustCLI(t, "audit", "list", "--action", "client.create", "--json", "--data-dir", dir)
	var line map[string]any
	if err := json.Unmarshal([]byte(out), &line); err != nil {
		t.Fatalf("audit list --json: %v\n%s", err, out)
	}
	if line["clientIp"] != "192.0.2.7" || line["userAgent"] != "deploy-script/1.0" {
		t.Errorf("audit list --json = %v, want clientIp and userAgent", line)
	}
}
