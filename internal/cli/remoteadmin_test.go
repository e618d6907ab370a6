package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// remoteCLI runs an sts command against the server s with token in
// STS_TOKEN (--server is appended).
func (s *adminServer) remoteCLI(t *testing.T, token string, args ...string) (int, string, string) {
	t.Helper()
	setenv(t, "STS_TOKEN", token)
	setenv(t, "STS_SERVER", "")
	return runCLI(t, append(args, "--server", s.r.base)...)
}

// remoteJSON runs a command with --output json as the admin and decodes
// its stdout into v; any failure fails the test.
func (s *adminServer) remoteJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, out, e := s.remoteCLI(t, s.admin, append(args, "--output", "json")...)
	if code != 0 {
		t.Fatalf("sts %v = %d, stderr %q", args, code, e)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("sts %v: stdout is not JSON: %v\n%s", args, err, out)
	}
}

// TestRemoteAdministration: with --server every admin noun works against
// a running server through its admin API, as the principal in STS_TOKEN;
// --output json prints one object for show and an array for list, with
// enum values as words. One server serves every subtest.
func TestRemoteAdministration(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)

	t.Run("org", func(t *testing.T) {
		var o map[string]any
		s.remoteJSON(t, &o, "org", "create", "--name", "remote-org", "--tier", "gold")
		id, _ := o["id"].(string)
		if id == "" || o["name"] != "remote-org" || o["tier"] != "gold" {
			t.Fatalf("org create = %v", o)
		}
		var list []map[string]any
		s.remoteJSON(t, &list, "org", "list")
		if len(list) != 2 {
			t.Errorf("org list = %v, want the bootstrap organization and remote-org", list)
		}
		var shown map[string]any
		s.remoteJSON(t, &shown, "org", "show", "remote-org")
		if shown["id"] != id {
			t.Errorf("org show remote-org = %v, want id %s", shown, id)
		}
		s.remoteJSON(t, &shown, "org", "update", id, "--name", "renamed", "--tier", "free")
		if shown["name"] != "renamed" || shown["tier"] != "free" {
			t.Errorf("org update = %v", shown)
		}
		// Not empty: refused with the server's code and reason.
		var p map[string]any
		s.remoteJSON(t, &p, "principal", "create", "--org", "renamed", "--name", "bob")
		code, _, e := s.remoteCLI(t, s.admin, "org", "delete", "renamed")
		if code != 1 || !strings.HasPrefix(e, "sts: failed_precondition: organization is not empty") {
			t.Errorf("org delete (not empty) = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "principal", "delete", p["id"].(string)); code != 0 {
			t.Fatalf("principal delete = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "org", "delete", "renamed"); code != 0 {
			t.Fatalf("org delete = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "org", "show", id); code != 1 || !strings.Contains(e, "no organization") {
			t.Errorf("org show after delete = %d %q", code, e)
		}
		// The caller's own organization is never deleted.
		if code, _, e := s.remoteCLI(t, s.admin, "org", "delete", s.orgID); code != 1 || !strings.HasPrefix(e, "sts: invalid_argument:") {
			t.Errorf("org delete (own) = %d %q", code, e)
		}
	})

	t.Run("principal", func(t *testing.T) {
		var p map[string]any
		s.remoteJSON(t, &p, "principal", "create", "--org", s.orgID, "--name", "deployer", "--kind", "service-account")
		id, _ := p["id"].(string)
		if id == "" || p["kind"] != "service-account" || p["organizationId"] != s.orgID || p["disabled"] != false {
			t.Fatalf("principal create = %v", p)
		}
		var list []map[string]any
		s.remoteJSON(t, &list, "principal", "list", "--org", s.orgID)
		kinds := map[string]any{}
		for _, q := range list {
			kinds[q["name"].(string)] = q["kind"]
		}
		if kinds["deployer"] != "service-account" || kinds["admin"] != "user" {
			t.Errorf("principal list kinds = %v", kinds)
		}
		s.remoteJSON(t, &p, "principal", "disable", "deployer")
		if p["disabled"] != true {
			t.Errorf("principal disable = %v", p)
		}
		s.remoteJSON(t, &p, "principal", "enable", id)
		if p["disabled"] != false {
			t.Errorf("principal enable = %v", p)
		}
		code, out, _ := s.remoteCLI(t, s.admin, "principal", "show", id)
		if code != 0 || !strings.Contains(out, "service-account") || strings.Contains(out, "PRINCIPAL_KIND") {
			t.Errorf("principal show (table) = %d %q, want the kind as a word", code, out)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "principal", "delete", id); code != 0 {
			t.Fatalf("principal delete = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "principal", "show", id); code != 1 || !strings.Contains(e, "no principal") {
			t.Errorf("principal show after delete = %d %q", code, e)
		}
	})

	t.Run("client", func(t *testing.T) {
		var sa map[string]any
		s.remoteJSON(t, &sa, "principal", "create", "--org", s.orgID, "--name", "ci-bot", "--kind", "service-account")
		var created struct {
			Client       map[string]any `json:"client"`
			ClientSecret string         `json:"clientSecret"`
		}
		s.remoteJSON(t, &created, "client", "create", "--org", s.orgID, "--principal", "ci-bot", "--name", "ci",
			"--grant-type", "client_credentials", "--scope", "deploy", "--scope", "read")
		id, _ := created.Client["id"].(string)
		if id == "" || created.ClientSecret == "" || created.Client["authMethod"] != "client_secret_basic" || created.Client["principalId"] != sa["id"] {
			t.Fatalf("client create = %+v", created)
		}
		if _, ok := created.Client["clientSecret"]; ok {
			t.Errorf("the client object carries its secret: %v", created.Client)
		}
		var shown map[string]any
		s.remoteJSON(t, &shown, "client", "show", id)
		if shown["id"] != id || shown["hasSecret"] != true || len(shown["scopes"].([]any)) != 2 {
			t.Errorf("client show = %v", shown)
		}
		s.remoteJSON(t, &shown, "client", "disable", id)
		if shown["disabled"] != true {
			t.Errorf("client disable = %v", shown)
		}
		var list []map[string]any
		s.remoteJSON(t, &list, "client", "list", "--org", s.orgID)
		if len(list) != 1 || list[0]["id"] != id {
			t.Errorf("client list = %v", list)
		}
		// A principal clients issue tokens to is not deleted under them.
		if code, _, e := s.remoteCLI(t, s.admin, "principal", "delete", "ci-bot"); code != 1 || !strings.HasPrefix(e, "sts: failed_precondition: principal is the subject of clients "+id) {
			t.Errorf("principal delete (client subject) = %d %q", code, e)
		}
		var rotated struct {
			ClientSecret string `json:"clientSecret"`
		}
		s.remoteJSON(t, &rotated, "client", "rotate-secret", id)
		if rotated.ClientSecret == "" || rotated.ClientSecret == created.ClientSecret {
			t.Errorf("client rotate-secret gave %q", rotated.ClientSecret)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "client", "delete", id); code != 0 {
			t.Fatalf("client delete = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "client", "show", id); code != 1 || !strings.HasPrefix(e, "sts: not_found:") {
			t.Errorf("client show after delete = %d %q", code, e)
		}
	})

	t.Run("pat", func(t *testing.T) {
		var created struct {
			Token string         `json:"token"`
			PAT   map[string]any `json:"personalAccessToken"`
		}
		s.remoteJSON(t, &created, "pat", "create", "--user", "admin", "--org", s.orgID, "--expires-in", "2d",
			"--scope", "identity:read", "--description", "workstation")
		id, _ := created.PAT["id"].(string)
		if !patRE.MatchString(created.Token) || id == "" || created.PAT["description"] != "workstation" {
			t.Fatalf("pat create = %+v", created)
		}
		var list []map[string]any
		s.remoteJSON(t, &list, "pat", "list", "--user", "admin")
		found := false
		for _, p := range list {
			found = found || p["id"] == id
			if _, ok := p["token"]; ok {
				t.Errorf("pat list shows a secret: %v", p)
			}
		}
		if !found {
			t.Errorf("pat list = %v, lacks %s", list, id)
		}
		// The new PAT works, and lacks sts:admin: the server says so.
		code, _, e := s.remoteCLI(t, created.Token, "principal", "list", "--org", s.orgID)
		if code != 1 || !strings.Contains(e, "sts: permission_denied: token lacks the sts:admin scope") {
			t.Errorf("principal list with an identity:read PAT = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "pat", "revoke", id); code != 0 {
			t.Fatalf("pat revoke = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, created.Token, "org", "list"); code != 1 || !strings.HasPrefix(e, "sts: unauthenticated:") {
			t.Errorf("org list with the revoked PAT = %d %q", code, e)
		}
		// --scope takes a comma-separated list, as every noun's does
		// (docs/cli.md, "Flags shared by every noun").
		var listed struct {
			PAT map[string]any `json:"personalAccessToken"`
		}
		s.remoteJSON(t, &listed, "pat", "create", "--user", "admin", "--expires-in", "1d", "--scope", "identity:read,tokens:read", "--scope", "identity:id_token")
		if got := fmt.Sprint(listed.PAT["scopes"]); got != "[identity:id_token identity:read tokens:read]" && got != "[identity:read tokens:read identity:id_token]" {
			t.Errorf("pat create --scope identity:read,tokens:read --scope identity:id_token: scopes %s", got)
		}
		// Without --scope the API would grant full access: refused.
		if code, _, e := s.remoteCLI(t, s.admin, "pat", "create", "--user", "admin"); code != 2 || !strings.Contains(e, "--scope") {
			t.Errorf("pat create without --scope = %d %q", code, e)
		}
	})

	t.Run("pool and provider", func(t *testing.T) {
		if code, out, e := s.remoteCLI(t, s.admin, "pool", "create", "gha", "--org", s.orgID, "--condition", `assertion.repository_owner == "acme"`,
			"--attribute", "repo=assertion.repository", "--scope", "read", "--scope", "write", "--max-token-lifetime", "1h"); code != 0 {
			t.Fatalf("pool create = %d %q %q", code, out, e)
		}
		// --org takes a name as every noun's does (docs/cli.md, "Flags
		// shared by every noun"): the bootstrap organization is "default".
		var named map[string]any
		s.remoteJSON(t, &named, "pool", "create", "named", "--org", "default", "--condition", `assertion.repository_owner == "acme"`)
		if named["organizationId"] != s.orgID {
			t.Errorf("pool create --org default = %v, want organization %s", named, s.orgID)
		}
		s.remoteJSON(t, &named, "pool", "update", "named", "--org", "default", "--display-name", "Named")
		if named["organizationId"] != s.orgID || named["displayName"] != "Named" {
			t.Errorf("pool update --org default = %v, want organization %s", named, s.orgID)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "pool", "create", "ghost", "--org", "no-such-org"); code != 1 || !strings.Contains(e, `no organization "no-such-org"`) {
			t.Errorf("pool create --org no-such-org = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "pool", "delete", "named"); code != 0 {
			t.Fatalf("pool delete named = %d %q", code, e)
		}
		// Bad CEL is refused by the server, with its code.
		if code, _, e := s.remoteCLI(t, s.admin, "pool", "create", "bad", "--org", s.orgID, "--condition", "assertion.sub =="); code != 1 || !strings.HasPrefix(e, "sts: invalid_argument:") {
			t.Errorf("pool create (bad CEL) = %d %q", code, e)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "provider", "create", "github", "--pool", "gha", "--issuer", "https://token.actions.githubusercontent.com",
			"--audience", "sts", "--jwks-uri", "https://token.actions.githubusercontent.com/.well-known/jwks"); code != 0 {
			t.Fatalf("provider create = %d %q", code, e)
		}
		var shown struct {
			Pool      map[string]any   `json:"pool"`
			Providers []map[string]any `json:"providers"`
		}
		s.remoteJSON(t, &shown, "pool", "show", "gha")
		if shown.Pool["id"] != "gha" || shown.Pool["maxTokenLifetime"] != "3600s" || len(shown.Pool["scopes"].([]any)) != 2 ||
			len(shown.Providers) != 1 || shown.Providers[0]["issuer"] != "https://token.actions.githubusercontent.com" {
			t.Errorf("pool show = %+v", shown)
		}
		// The text form is still the configuration file's YAML.
		if code, out, _ := s.remoteCLI(t, s.admin, "pool", "show", "gha"); code != 0 || !strings.Contains(out, "condition: assertion.repository_owner == \"acme\"") {
			t.Errorf("pool show (YAML) = %d\n%s", code, out)
		}
		if code, _, e := s.remoteCLI(t, s.admin, "pool", "update", "gha", "--attribute", "ref=assertion.ref", "--attribute", "repo="); code != 0 {
			t.Fatalf("pool update = %d %q", code, e)
		}
		s.remoteJSON(t, &shown, "pool", "show", "gha")
		if attrs := shown.Pool["mapping"].(map[string]any)["attributes"].(map[string]any); len(attrs) != 1 || attrs["ref"] != "assertion.ref" {
			t.Errorf("attributes after update = %v, want ref only", attrs)
		}
		var disabled map[string]any // a write prints the object as it now is
		s.remoteJSON(t, &disabled, "pool", "disable", "gha")
		if disabled["id"] != "gha" || disabled["disabled"] != true {
			t.Errorf("pool disable = %v", disabled)
		}
		var pools []map[string]any
		s.remoteJSON(t, &pools, "pool", "list")
		if len(pools) != 1 || pools[0]["disabled"] != true {
			t.Errorf("pool list = %v", pools)
		}
		var providers []map[string]any
		s.remoteJSON(t, &providers, "provider", "list", "--pool", "gha")
		if len(providers) != 1 || providers[0]["id"] != "github" {
			t.Errorf("provider list = %v", providers)
		}
		// Every provider option travels through the API.
		if code, _, e := s.remoteCLI(t, s.admin, "provider", "create", "k8s", "--pool", "gha", "--issuer", "https://k8s.example",
			"--audience", "sts", "--jwks-uri", "https://k8s.example/jwks", "--allow-missing-kid"); code != 0 {
			t.Fatalf("provider create --allow-missing-kid = %d %q", code, e)
		}
		var k8s map[string]any
		s.remoteJSON(t, &k8s, "provider", "update", "k8s", "--pool", "gha", "--allow-multiple-audiences")
		if k8s["id"] != "k8s" || k8s["allowMultipleAudiences"] != true {
			t.Errorf("provider update = %v", k8s)
		}
		var k8sShown map[string]any // a map of its own: decoding into k8s would keep update's keys
		s.remoteJSON(t, &k8sShown, "provider", "show", "k8s", "--pool", "gha")
		if k8sShown["allowMissingKid"] != true || k8sShown["allowMultipleAudiences"] != true || k8sShown["oneTimeUse"] != false {
			t.Errorf("provider show k8s = %v", k8sShown)
		}
		if code, out, _ := s.remoteCLI(t, s.admin, "provider", "show", "k8s", "--pool", "gha"); code != 0 || !strings.Contains(out, "allow_missing_kid: true") {
			t.Errorf("provider show k8s (YAML) = %d\n%s", code, out)
		}
		if code, out, e := s.remoteCLI(t, s.admin, "pool", "delete", "gha"); code != 0 || !strings.Contains(e, "2 provider") {
			t.Errorf("pool delete = %d %q %q", code, out, e)
		}
	})

	t.Run("runner key", func(t *testing.T) {
		var r map[string]any
		s.remoteJSON(t, &r, "principal", "create", "--org", s.orgID, "--name", "runner-9", "--kind", "runner")
		code, pub, e := runCLI(t, "runner", "keygen", "--private-key-file", t.TempDir()+"/runner.key")
		if code != 0 {
			t.Fatalf("runner keygen = %d %q", code, e)
		}
		var k map[string]any
		s.remoteJSON(t, &k, "runner", "set-key", "--runner", "runner-9", "--public-key", strings.TrimSpace(pub))
		if k["runnerId"] != r["id"] || k["fingerprint"] == "" || k["publicKey"] != strings.TrimSpace(pub) {
			t.Errorf("runner set-key = %v (public key %q)", k, pub)
		}
		var got map[string]any
		s.remoteJSON(t, &got, "runner", "get-key", "--runner", r["id"].(string))
		if got["fingerprint"] != k["fingerprint"] {
			t.Errorf("runner get-key = %v, want %v", got, k)
		}
	})

	t.Run("keys", func(t *testing.T) {
		var keys []map[string]any
		s.remoteJSON(t, &keys, "keys", "list")
		states := map[any]int{}
		for _, k := range keys {
			states[k["state"]]++
		}
		if states["active"] == 0 || states["next"] == 0 {
			t.Fatalf("keys list states = %v, want active and next as words", states)
		}
		var rot map[string]any
		s.remoteJSON(t, &rot, "keys", "rotate", "--force")
		if rot["rotated"] != true || rot["activatedKid"] == "" {
			t.Errorf("keys rotate = %v", rot)
		}
	})

	t.Run("audit", func(t *testing.T) {
		var events []map[string]any
		s.remoteJSON(t, &events, "audit", "list", "--action", "client.create", "--org", s.orgID)
		if len(events) != 1 || events[0]["action"] != "client.create" {
			t.Errorf("audit list --action client.create = %v", events)
		}
	})

	t.Run("revoke subject", func(t *testing.T) {
		var res map[string]any
		s.remoteJSON(t, &res, "revoke", "subject", "--subject", "repo:acme/app:ref:refs/heads/main", "--keep", "13h")
		if res["issuedBefore"] == nil || res["refreshTokensRevoked"] != "0" {
			t.Errorf("revoke subject = %v", res)
		}
		var events []map[string]any
		s.remoteJSON(t, &events, "audit", "list", "--action", "subject.revoke")
		if len(events) != 1 || events[0]["target"] != "subject:repo:acme/app:ref:refs/heads/main" {
			t.Errorf("audit of subject.revoke = %v", events)
		}
		if code, _, e := s.remoteCLI(t, s.notAdmin, "revoke", "subject", "--subject", "x"); code != 1 || !strings.HasPrefix(e, "sts: permission_denied:") {
			t.Errorf("revoke subject without sts:admin = %d %q", code, e)
		}
	})

	t.Run("exchange-token", func(t *testing.T) {
		var et map[string]any
		s.remoteJSON(t, &et, "exchange-token", "create", "--principal", "admin", "--valid-for", "1m")
		if tok, _ := et["exchangeToken"].(string); tok == "" {
			t.Errorf("exchange-token create = %v", et)
		}
	})

	// Without --server the same commands open the database (break-glass)
	// and print the same objects.
	t.Run("direct", func(t *testing.T) {
		setenv(t, "STS_SERVER", "")
		direct := func(v any, args ...string) {
			t.Helper()
			code, out, e := runCLI(t, append(args, "--data-dir", s.dir, "--output", "json")...)
			if code != 0 {
				t.Fatalf("sts %v = %d %q", args, code, e)
			}
			if err := json.Unmarshal([]byte(out), v); err != nil {
				t.Fatalf("sts %v: %v\n%s", args, err, out)
			}
		}
		var o, p map[string]any
		direct(&o, "org", "create", "--name", "glass")
		direct(&o, "org", "update", "glass", "--tier", "enterprise")
		if o["name"] != "glass" || o["tier"] != "enterprise" {
			t.Errorf("direct org update = %v", o)
		}
		direct(&p, "principal", "create", "--org", "glass", "--name", "runner-1", "--kind", "runner")
		direct(&p, "principal", "disable", "runner-1")
		if p["kind"] != "runner" || p["disabled"] != true {
			t.Errorf("direct principal disable = %v", p)
		}
		// The remote view is the same object.
		var remote map[string]any
		s.remoteJSON(t, &remote, "principal", "show", p["id"].(string))
		if remote["kind"] != p["kind"] || remote["disabled"] != p["disabled"] || remote["createdAt"] != p["createdAt"] {
			t.Errorf("remote %v != direct %v", remote, p)
		}
		if code, _, e := runCLI(t, "org", "delete", "glass", "--data-dir", s.dir); code != 1 || !strings.Contains(e, "not empty") {
			t.Errorf("direct org delete (not empty) = %d %q", code, e)
		}
		for _, args := range [][]string{{"principal", "delete", "runner-1"}, {"org", "delete", "glass"}} {
			if code, _, e := runCLI(t, append(args, "--data-dir", s.dir)...); code != 0 {
				t.Errorf("direct %v = %d %q", args, code, e)
			}
		}
		var events []map[string]any
		direct(&events, "audit", "list", "--action", "organization.delete")
		if len(events) != 2 || events[0]["actor"] != "cli" {
			t.Errorf("audit of organization.delete = %v, want the CLI's and the API's", events)
		}
	})

	t.Run("insufficient token", func(t *testing.T) {
		code, out, e := s.remoteCLI(t, s.notAdmin, "org", "list")
		if code != 1 || out != "" || e != "sts: permission_denied: token lacks the sts:admin scope\n" {
			t.Errorf("org list without sts:admin = %d %q %q", code, out, e)
		}
		setenv(t, "STS_TOKEN", s.admin)
		code, _, e = runCLI(t, "org", "list", "--server", "http://0.0.0.0:1/")
		if !strings.HasPrefix(e, "sts: warning: STS_TOKEN goes to 0.0.0.0:1 in plain text; use https\n") {
			t.Errorf("org list over plain http to another host: stderr %q, want the warning first", e)
		}
		code, _, e = s.remoteCLI(t, "", "org", "list")
		if code != 2 || !strings.Contains(e, "STS_TOKEN") {
			t.Errorf("org list without STS_TOKEN = %d %q", code, e)
		}
	})
}

// TestCompletionAndHelp: cobra's completion scripts for every shell; the
// admin commands say in --help how they pick their mode.
func TestCompletionAndHelp(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{"bash": "bash completion V2 for sts", "zsh": "#compdef sts",
		"fish": "fish completion for sts", "powershell": "Register-ArgumentCompleter"} {
		code, out, e := runCLI(t, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("sts completion %s = %d, %d bytes, stderr %q; want %q", shell, code, len(out), e, want)
		}
	}
	for _, args := range [][]string{{"org", "list"}, {"principal", "delete"}, {"client", "show"}, {"pat", "create"},
		{"keys", "rotate"}, {"keys", "revoke"}, {"audit", "list"}, {"exchange-token", "create"}, {"revoke", "subject"}, {"pool", "show"}, {"runner", "set-key"}} {
		code, out, _ := runCLI(t, append(args, "--help")...)
		if code != 0 || !strings.Contains(out, "--server") || !strings.Contains(out, "Without --server this opens the database directly (bootstrap, break-glass).") ||
			!strings.Contains(out, "--output") {
			t.Errorf("sts %v --help lacks the mode note:\n%s", args, out)
		}
	}
	if code, _, e := runCLI(t, "org", "list", "--output", "yaml", "--server", "http://127.0.0.1:1"); code != 2 || !strings.Contains(e, "want table or json") {
		t.Errorf("--output yaml = %d %q", code, e)
	}
	// No API call sets the instance administrator role: --server is refused,
	// not ignored.
	if code, _, e := runCLI(t, "principal", "grant-instance-admin", "p1", "--server", "http://127.0.0.1:1"); code != 2 || !strings.Contains(e, "database only") {
		t.Errorf("grant-instance-admin --server = %d %q", code, e)
	}
}
