package cli_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestServeRefusesDeletingDeclaredPool: a pool and a provider the
// configuration file declares are not deleted, neither through
// sts.v1.PoolService nor by the CLI (remote, or direct with the server's
// file), since the next start would create them again with their trust
// (docs/security.md A-59). The refusal is failed_precondition naming what
// to do instead, and changes nothing: the pool and provider stay, no
// revocation row is stored, no deletion is audited. Once the file no
// longer declares them, the deletion proceeds and leaves its A-54 rows.
func TestServeRefusesDeletingDeclaredPool(t *testing.T) {
	t.Parallel()
	dir, file := t.TempDir(), writeConfig(t, exampleYAML)
	s := &adminServer{dir: dir, r: serve(t, "--config", file, "--data-dir", dir)}
	s.r.waitFor(t, "/readyz", 200)
	s.admin = s.mintPAT(t, "*", "sts:admin")
	ps := stsv1connect.NewPoolServiceClient(h2cClient(s.admin), s.r.base+"/api")
	ctx := t.Context()

	const (
		poolMsg     = "pool ci is declared in the configuration file; disable it (`sts pool disable ci`) or remove it from the file first"
		providerMsg = "provider github of pool ci is declared in the configuration file; disable it (`sts provider disable github --pool ci`) or remove it from the file first"
	)
	refused := func(what string, err error, msg string) {
		t.Helper()
		if ce, ok := errors.AsType[*connect.Error](err); !ok || ce.Code() != connect.CodeFailedPrecondition || ce.Message() != msg {
			t.Errorf("%s = %v, want failed_precondition %q", what, err, msg)
		}
	}
	_, err := ps.DeletePool(ctx, &stsv1.DeletePoolRequest{PoolId: "ci"})
	refused("API DeletePool", err, poolMsg)
	_, err = ps.DeleteProvider(ctx, &stsv1.DeleteProviderRequest{PoolId: "ci", ProviderId: "github"})
	refused("API DeleteProvider", err, providerMsg)

	remote := func(args ...string) (int, string, string) { return s.remoteCLI(t, s.admin, args...) }
	direct := func(args ...string) (int, string, string) {
		return runCLI(t, append(args, "--config", file, "--data-dir", dir)...)
	}
	for _, tc := range []struct {
		name string
		run  func(args ...string) (int, string, string)
		args []string
		want string
	}{
		{"remote pool delete", remote, []string{"pool", "delete", "ci"}, "failed_precondition: " + poolMsg},
		{"remote provider delete", remote, []string{"provider", "delete", "github", "--pool", "ci"}, "failed_precondition: " + providerMsg},
		{"direct pool delete", direct, []string{"pool", "delete", "ci"}, poolMsg},
		{"direct provider delete", direct, []string{"provider", "delete", "github", "--pool", "ci"}, providerMsg},
	} {
		if code, out, errOut := tc.run(tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s = %d, %q %q; want a failure saying %q", tc.name, code, out, errOut, tc.want)
		}
	}

	// Nothing changed: both records stay, and no deletion left a row or an
	// event.
	if out := mustCLI(t, "provider", "list", "--pool", "ci", "--data-dir", dir); !strings.Contains(out, "github") {
		t.Errorf("provider list after the refused deletions:\n%s", out)
	}
	if out := mustCLI(t, "audit", "list", "--org", "acme", "--action", "pool.delete", "--data-dir", dir); strings.Contains(out, "pool:ci") {
		t.Errorf("a refused deletion was audited:\n%s", out)
	}
	if got := deletionRows(t, dir); len(got) != 0 {
		t.Errorf("revocation rows after the refused deletions: %v, want none", got)
	}

	// A file that no longer declares them lets the deletion proceed, with
	// the rows that end the earlier tokens.
	orgOnly := writeConfig(t, "organizations:\n  - {id: acme, name: Acme, tier: enterprise}\n")
	mustCLI(t, "provider", "delete", "github", "--pool", "ci", "--config", orgOnly, "--data-dir", dir)
	mustCLI(t, "pool", "delete", "ci", "--config", orgOnly, "--data-dir", dir)
	if got := deletionRows(t, dir); len(got) != 2 {
		t.Errorf("revocation rows after the deletions: %v, want the provider's and the pool's", got)
	}
}

// deletionRows returns the IDs of the pool and provider revocation rows
// in the SQLite database of dir.
func deletionRows(t *testing.T, dir string) []string {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(dir, "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.GetRevocations(t.Context(), storage.RevocationIDPool("ci"), storage.RevocationIDProvider("ci", "github"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestServeRefusesDeletingDeclaredOrganization: an organization the
// configuration file declares is not deleted, neither through
// sts.v1.OrganizationService nor by the CLI (remote, or direct with the
// server's file), even when it is empty: the next start would create it
// again with the same ID, and the deleted one's audit trail would read as
// the new one's to its administrators (docs/security.md A-111). The
// refusal is failed_precondition naming what to do instead, and changes
// nothing. Once the file no longer declares it, the deletion proceeds.
func TestServeRefusesDeletingDeclaredOrganization(t *testing.T) {
	t.Parallel()
	const yaml = "organizations:\n  - {id: acme, name: Acme, tier: enterprise}\n  - {id: spare, name: Spare}\n"
	dir, file := t.TempDir(), writeConfig(t, yaml)
	s := &adminServer{dir: dir, r: serve(t, "--config", file, "--data-dir", dir)}
	s.r.waitFor(t, "/readyz", 200)
	s.admin = s.mintPAT(t, "*", "sts:admin")
	os := stsv1connect.NewOrganizationServiceClient(h2cClient(s.admin), s.r.base+"/api")
	ctx := t.Context()

	const msg = "organization spare is declared in the configuration file; remove it from the file first, or the next start creates it again"
	_, err := os.DeleteOrganization(ctx, &stsv1.DeleteOrganizationRequest{OrganizationId: "spare"})
	if ce, ok := errors.AsType[*connect.Error](err); !ok || ce.Code() != connect.CodeFailedPrecondition || ce.Message() != msg {
		t.Errorf("API DeleteOrganization = %v, want failed_precondition %q", err, msg)
	}
	remote := func(args ...string) (int, string, string) { return s.remoteCLI(t, s.admin, args...) }
	direct := func(args ...string) (int, string, string) {
		return runCLI(t, append(args, "--config", file, "--data-dir", dir)...)
	}
	for _, tc := range []struct {
		name string
		run  func(args ...string) (int, string, string)
		want string
	}{
		{"remote org delete", remote, "failed_precondition: " + msg},
		{"direct org delete", direct, msg},
	} {
		if code, out, errOut := tc.run("org", "delete", "spare"); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s = %d, %q %q; want a failure saying %q", tc.name, code, out, errOut, tc.want)
		}
	}
	// Nothing changed: the organization stays, no deletion was audited.
	if _, err := os.GetOrganization(ctx, &stsv1.GetOrganizationRequest{OrganizationId: "spare"}); err != nil {
		t.Errorf("GetOrganization after the refused deletions: %v", err)
	}
	if out := mustCLI(t, "audit", "list", "--org", "spare", "--action", "organization.delete", "--data-dir", dir); strings.Contains(out, "organization:spare") {
		t.Errorf("a refused deletion was audited:\n%s", out)
	}

	// A file that no longer declares it lets the deletion proceed.
	acmeOnly := writeConfig(t, "organizations:\n  - {id: acme, name: Acme, tier: enterprise}\n")
	mustCLI(t, "org", "delete", "spare", "--config", acmeOnly, "--data-dir", dir)
	if _, err := os.GetOrganization(ctx, &stsv1.GetOrganizationRequest{OrganizationId: "spare"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("GetOrganization after the deletion: %v, want not_found", err)
	}
}
