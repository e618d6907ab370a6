package cli_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestInstanceAdminRoles: against a real `sts serve`, the bootstrap admin
// is an instance administrator (it may create organizations); another
// sts:admin user of the same organization is only its organization's
// administrator until `sts principal grant-instance-admin` makes it one,
// and `revoke-instance-admin` takes the role back.
func TestInstanceAdminRoles(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)
	orgs := func(token string) stsv1connect.OrganizationServiceClient {
		return stsv1connect.NewOrganizationServiceClient(h2cClient(token), s.api)
	}
	if _, err := orgs(s.admin).CreateOrganization(t.Context(), &stsv1.CreateOrganizationRequest{Name: "acme"}); err != nil {
		t.Fatalf("bootstrap admin CreateOrganization: %v", err)
	}
	code, out, e := runCLI(t, "principal", "create", "--data-dir", s.dir, "--org", s.orgID, "--name", "ops")
	if code != 0 {
		t.Fatalf("principal create = %d %s", code, e)
	}
	ops := strings.TrimSpace(out)
	mint := func() string {
		code, out, e := runCLI(t, "pat", "create", "--data-dir", s.dir, "--user", ops, "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
		secret := patRE.FindString(out)
		if code != 0 || secret == "" {
			t.Fatalf("pat create = %d %q %q", code, out, e)
		}
		return secret
	}
	_, err := orgs(mint()).CreateOrganization(t.Context(), &stsv1.CreateOrganizationRequest{Name: "globex"})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("org admin CreateOrganization = %v, want permission_denied", err)
	}
	if code, _, e := runCLI(t, "principal", "grant-instance-admin", "--data-dir", s.dir, ops); code != 0 {
		t.Fatalf("grant-instance-admin = %d %s", code, e)
	}
	if _, err := orgs(mint()).CreateOrganization(t.Context(), &stsv1.CreateOrganizationRequest{Name: "globex"}); err != nil {
		t.Errorf("instance admin CreateOrganization: %v", err)
	}
	_, out, _ = runCLI(t, "principal", "list", "--data-dir", s.dir, "--org", s.orgID)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, ops) && !strings.HasSuffix(strings.TrimSpace(line), "true") {
			t.Errorf("principal list shows %q, want instance admin true", line)
		}
	}
	if !strings.Contains(out, "INSTANCE_ADMIN") {
		t.Errorf("principal list has no INSTANCE_ADMIN column:\n%s", out)
	}
	if code, _, e := runCLI(t, "principal", "revoke-instance-admin", "--data-dir", s.dir, ops); code != 0 {
		t.Fatalf("revoke-instance-admin = %d %s", code, e)
	}
	_, err = orgs(mint()).CreateOrganization(t.Context(), &stsv1.CreateOrganizationRequest{Name: "initech"})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("after revoke CreateOrganization = %v, want permission_denied", err)
	}
	if code, _, _ := runCLI(t, "principal", "grant-instance-admin", "--data-dir", s.dir, "no-such-principal"); code == 0 {
		t.Error("grant-instance-admin of an unknown principal succeeded")
	}
}
