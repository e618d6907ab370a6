package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestHostTokenCLI: a user stores a GitHub token for a runner with `sts
// host-token create` (value from a file); the runner, with a key pair from
// `sts runner keygen`, reads it back with `value`; the user, and a
// principal of another organization, get nothing.
func TestHostTokenCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sqlitetest.NewStore(t)
	pepper := make([]byte, 32)
	rand.Read(pepper)
	pats, _ := pat.NewService(store, pepper)
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	kr, _ := seal.NewKeyring(key)
	h := &api.Handler{Store: store, PATs: pats}
	h.SetHostTokens(&hosttoken.Service{Store: store, Envelope: &seal.Envelope{Keyring: kr}, Audit: &audit.Writer{Store: store}})
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	now := time.Now()
	org, _ := api.CreateOrganization(ctx, store, testCaller, "acme", "free", now)
	user, _ := api.CreatePrincipal(ctx, store, testCaller, org.ID, storage.PrincipalUser, "ada", "", now)
	runner, _ := api.CreatePrincipal(ctx, store, testCaller, org.ID, storage.PrincipalRunner, "runner", "", now)
	evilOrg, _ := api.CreateOrganization(ctx, store, testCaller, "evil", "free", now)
	evil, _ := api.CreatePrincipal(ctx, store, testCaller, evilOrg.ID, storage.PrincipalUser, "mallory", "", now)
	mint := func(owner string) string {
		_, s, err := pats.Create(ctx, pat.Caller{Actor: "test"}, pat.CreateInput{OwnerID: owner, Scopes: []string{pat.ScopeFull}, ExpiresAt: now.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	runnerPAT, userPAT, evilPAT := mint(runner.ID), mint(user.ID), mint(evil.ID)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "gho_cli_secret\n")

	setenv(t, "STS_TOKEN", runnerPAT)
	code, _, errOut := runCLI(t, "host-token", "create", "--server", srv.URL, "--runner", runner.ID, "--subject", user.ID,
		"--host", "github.com", "--token-file", tokenFile)
	if code == 0 || !strings.Contains(errOut, "permission_denied") {
		t.Errorf("runner plants a user's token = %d, %q; want permission_denied", code, errOut)
	}
	setenv(t, "STS_TOKEN", userPAT)
	code, out, errOut := runCLI(t, "host-token", "create", "--server", srv.URL, "--runner", runner.ID, "--subject", user.ID,
		"--host", "github.com", "--token-file", tokenFile, "--source", "oauth", "--expires-at", now.Add(8*time.Hour).Format(time.RFC3339),
		"--scope", "repo,read:org", "--scope", "workflow")
	id := strings.TrimSpace(out)
	if code != 0 || !storage.IsUUID(id) {
		t.Fatalf("host-token create = %d, %q, %q", code, out, errOut)
	}
	// --scope takes a comma-separated list, as every noun's does
	// (docs/cli.md, "Flags shared by every noun").
	scopesOf := func() []string {
		t.Helper()
		row, err := store.GetHostToken(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return row.Scopes
	}
	if got := scopesOf(); strings.Join(got, " ") != "repo read:org workflow" {
		t.Errorf("host-token create --scope repo,read:org --scope workflow: scopes %q", got)
	}
	if code, _, errOut := runCLI(t, "host-token", "update", "--server", srv.URL, "--scope", "repo,gist", id); code != 0 {
		t.Fatalf("host-token update --scope = %d, %q", code, errOut)
	}
	if got := scopesOf(); strings.Join(got, " ") != "repo gist" {
		t.Errorf("host-token update --scope repo,gist: scopes %q", got)
	}
	code, out, _ = runCLI(t, "host-token", "list", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, id) || strings.Contains(out, "gho_cli_secret") ||
		!strings.Contains(out, " oauth ") || !strings.Contains(out, user.ID+" (user)") {
		t.Errorf("host-token list = %d, %q", code, out)
	}

	// The runner's key pair: private key in a file, public key registered.
	keyFile := filepath.Join(t.TempDir(), "runner.key")
	code, out, errOut = runCLI(t, "runner", "keygen", "--private-key-file", keyFile)
	pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != 0 || err != nil || len(pub) != 32 {
		t.Fatalf("runner keygen = %d, %q, %q", code, out, errOut)
	}
	if _, err := hosttoken.SetRunnerKey(ctx, store, nil, hosttoken.Caller{OrgID: org.ID, Admin: true}, runner.ID, pub, now); err != nil {
		t.Fatal(err)
	}
	value := []string{"host-token", "value", "--server", srv.URL, "--runner", runner.ID, "--principal", user.ID,
		"--host", "github.com", "--private-key-file", keyFile}
	code, out, errOut = runCLI(t, value...)
	if code == 0 || !strings.Contains(errOut, "permission_denied") {
		t.Errorf("host-token value as the user = %d, %q, %q; want permission_denied", code, out, errOut)
	}
	setenv(t, "STS_TOKEN", runnerPAT)
	code, out, errOut = runCLI(t, value...)
	if code != 0 || strings.TrimSpace(out) != "gho_cli_secret" {
		t.Fatalf("host-token value = %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "host-token", "set-metadata", "--server", srv.URL, "--runner", runner.ID, "--external-user-id", "octocat", id)
	if code != 0 || out != "" || errOut == "" {
		t.Errorf("host-token set-metadata = %d, %q, %q; want the confirmation on stderr only", code, out, errOut)
	}
	code, _, _ = runCLI(t, "host-token", "create", "--server", srv.URL, "--runner", "nope", "--host", "h", "--token-file", tokenFile)
	if code == 0 {
		t.Error("host-token create with a bad runner ID succeeded")
	}
	setenv(t, "STS_TOKEN", evilPAT)
	code, _, errOut = runCLI(t, value...)
	if code == 0 || !strings.Contains(errOut, "permission_denied") {
		t.Errorf("host-token value from another org = %d, %q; want permission_denied", code, errOut)
	}
	code, _, errOut = runCLI(t, "host-token", "get", "--server", srv.URL, id)
	if code == 0 || !strings.Contains(errOut, "not_found") {
		t.Errorf("host-token get from another org = %d, %q; want not_found", code, errOut)
	}
	setenv(t, "STS_TOKEN", userPAT)
	code, out, errOut = runCLI(t, "host-token", "update", "--server", srv.URL, "--token-file", tokenFile, id)
	if code != 0 || out != "" || errOut == "" {
		t.Errorf("host-token update = %d, %q, %q; want the confirmation on stderr only", code, out, errOut)
	}
	// Standard input can be read once: both values from it would send
	// the token and an empty refresh token, which removes the stored one.
	for _, verb := range [][]string{{"update", id}, {"create", "--runner", runner.ID, "--host", "github.com"}} {
		args := append([]string{"host-token", verb[0], "--server", srv.URL, "--token-file", "-", "--refresh-token-file", "-"}, verb[1:]...)
		if code, _, errOut := runCLI(t, args...); code != 2 || !strings.Contains(errOut, "standard input") {
			t.Errorf("host-token %s with both values from stdin = %d, %q; want a usage error naming standard input", verb[0], code, errOut)
		}
	}
	code, out, errOut = runCLI(t, "host-token", "delete", "--server", srv.URL, id)
	if code != 0 || out != "" || errOut == "" {
		t.Errorf("host-token delete = %d, %q, %q; want the confirmation on stderr only", code, out, errOut)
	}
}

// testCaller is the actor of the records tests create directly.
var testCaller = pat.Caller{Actor: "test"}
