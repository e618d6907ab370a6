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

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/rsatest"
)

// trustDir returns a migrated data dir holding organization acme.
func trustDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	migrateSeeded(t, dir)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(dir, "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := storage.Now(time.Now())
	if err := s.CreateOrganization(t.Context(), storage.Organization{ID: "acme", Name: "Acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mustCLI runs a command that must succeed and returns its stdout.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("sts %s = %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mustFail runs a command that must fail and returns its stderr.
func mustFail(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code == 0 {
		t.Fatalf("sts %s succeeded, want a failure\n%s", strings.Join(args, " "), out)
	}
	return errOut
}

func TestPoolCommands(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	d := []string{"--data-dir", dir}
	cli := func(args ...string) []string { return append(args, d...) }

	mustCLI(t, cli("pool", "create", "ci", "--organization", "acme", "--condition", `assertion.repository_owner == "acme"`,
		"--subject", "assertion.sub", "--attribute", "repo=assertion.repository", "--scopes", "read,write", "--max-token-lifetime", "1h")...)

	// --org takes the organization's name too, as every noun's does.
	mustCLI(t, cli("pool", "create", "by-name", "--org", "Acme", "--condition", `assertion.repository_owner == "acme"`)...)
	mustCLI(t, cli("pool", "update", "by-name", "--org", "Acme", "--display-name", "By name")...)
	if out := mustCLI(t, cli("pool", "show", "by-name")...); !strings.Contains(out, "organization: acme") {
		t.Errorf("pool show by-name = %s, want organization acme", out)
	}
	mustCLI(t, cli("pool", "delete", "by-name")...)

	// Bad input is refused and writes nothing.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"invalid CEL", []string{"pool", "create", "bad", "--organization", "acme", "--condition", "assertion.sub =="}, `pool "bad": condition`},
		{"wrong CEL type", []string{"pool", "create", "bad", "--organization", "acme", "--condition", "1 + 2"}, "want bool"},
		{"unknown organization", []string{"pool", "create", "bad", "--organization", "ghost"}, `organization "ghost"`},
		{"bad id", []string{"pool", "create", "Bad/ID", "--organization", "acme"}, "pool ID"},
		{"duplicate", []string{"pool", "create", "ci", "--organization", "acme"}, "already exists"},
		{"lifetime above the maximum", []string{"pool", "create", "bad", "--organization", "acme", "--max-token-lifetime", "48h"}, "max-token-lifetime"},
		{"bad attribute flag", []string{"pool", "create", "bad", "--organization", "acme", "--attribute", "x"}, "NAME=CEL"},
	} {
		if got := mustFail(t, cli(tc.args...)...); !strings.Contains(got, tc.want) {
			t.Errorf("%s: stderr %q, want %q", tc.name, got, tc.want)
		}
	}
	if out := mustCLI(t, cli("pool", "list")...); strings.Contains(out, "bad") || !strings.Contains(out, "ci ") {
		t.Errorf("pool list after refused creations:\n%s", out)
	}

	mustCLI(t, cli("provider", "create", "github", "--pool", "ci", "--issuer", "https://token.actions.githubusercontent.com", "--audience", "sts")...)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"http issuer", []string{"provider", "create", "p", "--pool", "ci", "--issuer", "http://127.0.0.1:1", "--audience", "sts"}, "must use https"},
		{"no audience", []string{"provider", "create", "p", "--pool", "ci", "--issuer", "https://issuer.example"}, "audience"},
		{"unknown pool", []string{"provider", "create", "p", "--pool", "nope", "--issuer", "https://issuer.example", "--audience", "a"}, `pool "nope"`},
		{"removing the condition of a shared issuer's pool", []string{"pool", "update", "ci", "--condition", ""}, "condition is required"},
		{"invalid CEL on update", []string{"pool", "update", "ci", "--condition", "("}, `pool "ci": condition`},
		{"unsupported algorithm", []string{"provider", "update", "github", "--pool", "ci", "--algorithm", "HS256"}, "not supported"},
	} {
		if got := mustFail(t, cli(tc.args...)...); !strings.Contains(got, tc.want) {
			t.Errorf("%s: stderr %q, want %q", tc.name, got, tc.want)
		}
	}

	out := mustCLI(t, cli("pool", "show", "ci")...)
	for _, want := range []string{`condition: assertion.repository_owner == "acme"`, "repo: assertion.repository", "max_token_lifetime: 1h", "- id: github", "organization: acme"} {
		if !strings.Contains(out, want) {
			t.Errorf("pool show lacks %q:\n%s", want, out)
		}
	}
	mustCLI(t, cli("pool", "update", "ci", "--display-name", "CI", "--attribute", "repo=", "--scopes", "read")...)
	out = mustCLI(t, cli("pool", "show", "ci")...)
	if !strings.Contains(out, "display_name: CI") || strings.Contains(out, "repo:") || strings.Contains(out, "write") {
		t.Errorf("pool show after update:\n%s", out)
	}
	mustCLI(t, cli("pool", "disable", "ci")...)
	if out := mustCLI(t, cli("pool", "list")...); !strings.Contains(out, "disabled") {
		t.Errorf("pool list after disable:\n%s", out)
	}
	mustCLI(t, cli("pool", "enable", "ci")...)

	mustCLI(t, cli("provider", "disable", "github", "--pool", "ci")...)
	out = mustCLI(t, cli("provider", "list")...)
	if !strings.Contains(out, "ci    github  disabled  https://token.actions.githubusercontent.com  sts        discovery") {
		t.Errorf("provider list:\n%s", out)
	}
	mustCLI(t, cli("provider", "update", "github", "--pool", "ci", "--audience", "sts,other", "--disabled=false", "--one-time-use",
		"--allow-missing-kid", "--allow-multiple-audiences")...)
	if out := mustCLI(t, cli("provider", "show", "github", "--pool", "ci")...); !strings.Contains(out, "- other") || strings.Contains(out, "disabled") ||
		!strings.Contains(out, "one_time_use: true") || !strings.Contains(out, "allow_missing_kid: true") ||
		!strings.Contains(out, "allow_multiple_audiences: true") {
		t.Errorf("provider show after update (want audience other, one_time_use, both leniencies, not disabled):\n%s", out)
	}
	mustCLI(t, cli("provider", "delete", "github", "--pool", "ci")...)
	mustFail(t, cli("provider", "show", "github", "--pool", "ci")...)

	mustCLI(t, cli("provider", "create", "again", "--pool", "ci", "--issuer", "https://issuer.example", "--audience", "sts")...)
	if code, out, e := runCLI(t, cli("pool", "delete", "ci")...); code != 0 || out != "" || !strings.Contains(e, "1 provider") {
		t.Errorf("pool delete = %d %q %q", code, out, e)
	}
	if out := mustCLI(t, cli("provider", "list")...); strings.Contains(out, "again") {
		t.Errorf("providers outlived their pool:\n%s", out)
	}
}

// TestPoolTest: `sts pool test` verifies a token against an uploaded JWKS
// and explains the decision without minting.
func TestPoolTest(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	d := []string{"--data-dir", dir}
	cli := func(args ...string) []string { return append(args, d...) }
	key, err := rsatest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(jwksFile, jwks, 0o600)
	mustCLI(t, cli("pool", "create", "ci", "--organization", "acme", "--condition", `assertion.repository_owner == "acme"`, "--attribute", "repo=assertion.repository",
		"--audience", "https://api.example")...)
	mustCLI(t, cli("provider", "create", "gh", "--pool", "ci", "--issuer", "https://issuer.example", "--audience", "sts", "--jwks-file", jwksFile)...)

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
	out := mustCLI(t, cli("pool", "test", "--pool", "ci", "--token", sign("acme"), "--audience", "https://api.example")...)
	for _, want := range []string{"signature       ok     alg RS256", "condition       ok", `mapping.attributes.repo ok     assertion.repository => "acme/app"`, `ALLOWED subject "repo:acme/app"`} {
		if !strings.Contains(out, want) {
			t.Errorf("pool test output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ := runCLI(t, cli("pool", "test", "--pool", "ci", "--token", sign("evil"))...)
	if code != 1 || !strings.Contains(out, "condition       FAIL") || !strings.Contains(out, "DENIED reason condition_false") {
		t.Errorf("pool test of another owner's token = %d:\n%s", code, out)
	}
	// A token signed by another key fails at the signature.
	other, _ := rsatest.NewKey()
	key = other
	code, out, _ = runCLI(t, cli("pool", "test", "--pool", "ci", "--token", sign("acme"))...)
	if code != 1 || !strings.Contains(out, "signature_invalid") {
		t.Errorf("pool test of a forged token = %d:\n%s", code, out)
	}
	if out := mustCLI(t, cli("pool", "list")...); !strings.Contains(out, "ci ") {
		t.Error(out)
	}
}
