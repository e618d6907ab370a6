package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestRotateMasterGoesPastARowThatDoesNotOpen (docs/security.md T-147): a
// host token whose row was tampered with, first in the listing, does not
// stop `sts keys rotate-master`: the healthy row after it moves to the new
// master key; the command exits non-zero naming the row by ID (no value)
// and how to deal with it; once it is deleted a second run exits 0.
func TestRotateMasterGoesPastARowThatDoesNotOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	migrateSeeded(t, dir)
	oldKey, newKey := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	for _, f := range []string{oldKey, newKey} {
		if code, _, e := runCLI(t, "keys", "generate-master", "--out", f); code != 0 {
			t.Fatalf("generate-master = %d %s", code, e)
		}
	}
	ctx := t.Context()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(dir, "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	oldMaster, err := seal.LoadMasterKey(oldKey, "")
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := seal.NewKeyring(oldMaster)
	now := storage.Now(time.Now())
	org := storage.Organization{ID: storage.NewID(), Name: "acme", Tier: "free", CreatedAt: now}
	user := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalUser, Name: "user", CreatedAt: now}
	runner := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalRunner, Name: "runner", CreatedAt: now}
	if err := store.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	for _, p := range []storage.Principal{user, runner} {
		if err := store.CreatePrincipal(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	svc := &hosttoken.Service{Store: store, Envelope: &seal.Envelope{Keyring: kr}, Audit: &audit.Writer{Store: store}}
	caller := hosttoken.Caller{OrgID: org.ID, PrincipalID: user.ID, Kind: storage.PrincipalUser}
	for _, v := range []string{"gho_rotateOneValue", "gho_rotateTwoValue"} {
		if _, err := svc.Create(ctx, caller, hosttoken.CreateInput{RunnerID: runner.ID, UserID: user.ID, Host: "github.com",
			Token: v, Source: storage.HostTokenSourcePAT}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := store.ListHostTokens(ctx, storage.HostTokenFilter{Limit: 10})
	if err != nil || len(rows) != 2 {
		t.Fatalf("ListHostTokens = %d, %v", len(rows), err)
	}
	bad, good := rows[0].ID, rows[1].ID
	if err := store.UpdateHostToken(ctx, bad, func(old storage.HostToken) (storage.HostToken, error) {
		old.Host = "evil.example"
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}

	both := filepath.Join(dir, "both.yaml")
	writeFile(t, both, "master_key_file: "+newKey+"\nprevious_master_key_files: ["+oldKey+"]\n")
	code, out, e := runCLI(t, "keys", "rotate-master", "--config", both, "--data-dir", dir)
	if code == 0 || !strings.Contains(e, "1 host token(s)") || !strings.Contains(e, bad) ||
		!strings.Contains(e, "host-token delete") || strings.Contains(e, good) {
		t.Fatalf("rotate-master = %d %q %q; want a failure naming %s (alone) and how to delete it", code, out, e, bad)
	}
	if strings.Contains(e+out, "gho_") {
		t.Fatalf("rotate-master output discloses a value: %q %q", out, e)
	}
	newMaster, _ := seal.LoadMasterKey(newKey, "")
	onlyNew, _ := seal.NewKeyring(newMaster)
	if g, _ := store.GetHostToken(ctx, good); g.MasterKeyID != onlyNew.PrimaryID() {
		t.Errorf("healthy row after rotate-master under %s, want %s", g.MasterKeyID, onlyNew.PrimaryID())
	}
	if b, _ := store.GetHostToken(ctx, bad); b.MasterKeyID != kr.PrimaryID() {
		t.Errorf("tampered row rewritten: under %s", b.MasterKeyID)
	}
	if err := store.DeleteHostToken(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if code, out, e := runCLI(t, "keys", "rotate-master", "--config", both, "--data-dir", dir); code != 0 {
		t.Errorf("rotate-master after the delete = %d %q %q", code, out, e)
	}
}
