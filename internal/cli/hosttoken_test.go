package cli_test

import (
	"context"
	"crypto/rand"
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
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestHostTokenCLI: a runner stores a user's GitHub token with `sts
// host-token create` (value from a file), reads it back with `value`, and
// a principal of another organization gets not_found.
func TestHostTokenCLI(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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
	runnerPAT, evilPAT := mint(runner.ID), mint(evil.ID)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "gho_cli_secret\n")

	t.Setenv("STS_TOKEN", runnerPAT)
	code, out, errOut := runCLI(t, "host-token", "create", "--server", srv.URL, "--runner", runner.ID, "--subject", user.ID,
		"--host", "github.com", "--token-file", tokenFile, "--expires-at", now.Add(8*time.Hour).Format(time.RFC3339))
	id := strings.TrimSpace(out)
	if code != 0 || !hosttoken.IsUUID(id) {
		t.Fatalf("host-token create = %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "host-token", "value", "--server", srv.URL, id)
	if code != 0 || strings.TrimSpace(out) != "gho_cli_secret" {
		t.Fatalf("host-token value = %d, %q, %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "host-token", "list", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, id) || strings.Contains(out, "gho_cli_secret") {
		t.Errorf("host-token list = %d, %q", code, out)
	}
	code, _, _ = runCLI(t, "host-token", "create", "--server", srv.URL, "--runner", "nope", "--host", "h", "--token-file", tokenFile)
	if code == 0 {
		t.Error("host-token create with a bad runner ID succeeded")
	}
	t.Setenv("STS_TOKEN", evilPAT)
	code, _, errOut = runCLI(t, "host-token", "value", "--server", srv.URL, id)
	if code == 0 || !strings.Contains(errOut, "not_found") {
		t.Errorf("host-token value from another org = %d, %q; want not_found", code, errOut)
	}
}

// testCaller is the actor of the records tests create directly.
var testCaller = pat.Caller{Actor: "test"}
