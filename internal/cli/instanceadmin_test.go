package cli_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
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

// TestOrgAdminGetsNoInstanceAdminClient (docs/security.md A-42): against
// a real `sts serve`, a client bound to a service account that is an
// instance administrator gets, through client_credentials, a token that
// acts as the instance role (here it creates an organization). An
// organization administrator of the same organization can therefore
// neither create such a client nor rotate the secret of the one the
// instance role made; the secret the instance role holds keeps working.
func TestOrgAdminGetsNoInstanceAdminClient(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)
	ctx := t.Context()
	code, out, e := runCLI(t, "principal", "create", "--data-dir", s.dir, "--org", s.orgID, "--name", "acme-admin")
	if code != 0 {
		t.Fatalf("principal create = %d %s", code, e)
	}
	code, out, e = runCLI(t, "pat", "create", "--data-dir", s.dir, "--user", strings.TrimSpace(out), "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
	orgAdmin := patRE.FindString(out)
	if code != 0 || orgAdmin == "" {
		t.Fatalf("pat create = %d %q %q", code, out, e)
	}
	sa, err := stsv1connect.NewPrincipalServiceClient(h2cClient(s.admin), s.api).CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
		OrganizationId: s.orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "root-bot"})
	if err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	root := sa.GetPrincipal().GetId()
	if code, _, e := runCLI(t, "principal", "grant-instance-admin", "--data-dir", s.dir, root); code != 0 {
		t.Fatalf("grant-instance-admin = %d %s", code, e)
	}
	req := &stsv1.CreateClientRequest{OrganizationId: s.orgID, PrincipalId: root, GrantTypes: []string{"client_credentials"},
		Scopes: []string{"sts:admin"}, Audiences: []string{s.r.base}}

	_, err = stsv1connect.NewClientServiceClient(h2cClient(orgAdmin), s.api).CreateClient(ctx, req)
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("org admin CreateClient bound to the instance admin = %v, want permission_denied", err)
	}
	cr, err := stsv1connect.NewClientServiceClient(h2cClient(s.admin), s.api).CreateClient(ctx, req)
	if err != nil {
		t.Fatalf("instance admin CreateClient: %v", err)
	}
	cc := clientcredentials.Config{ClientID: cr.GetClient().GetId(), ClientSecret: cr.GetClientSecret(),
		TokenURL: s.r.base + "/oauth2/token", Scopes: []string{"sts:admin"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	// What the organization administrator would have held: the instance role.
	if _, err := stsv1connect.NewOrganizationServiceClient(h2cClient(tok.AccessToken), s.api).CreateOrganization(ctx,
		&stsv1.CreateOrganizationRequest{Name: "globex"}); err != nil {
		t.Errorf("the client's token CreateOrganization: %v, want the instance role", err)
	}
	_, err = stsv1connect.NewClientServiceClient(h2cClient(orgAdmin), s.api).RotateClientSecret(ctx,
		&stsv1.RotateClientSecretRequest{ClientId: cr.GetClient().GetId()})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("org admin RotateClientSecret of the instance admin's client = %v, want permission_denied", err)
	}
	if _, err := cc.Token(ctx); err != nil {
		t.Errorf("client_credentials with the instance role's secret after the refused rotation: %v", err)
	}
}

// TestGrantInstanceAdminRefusesOthersCredentials (docs/security.md A-76):
// against a real `sts serve`, an organization administrator may mint a
// `* sts:admin` PAT for a user of its organization, and bind a client to
// a service account of it, while they are not instance administrators.
// Promoting that principal would turn the secret the organization
// administrator holds into the instance role, so `sts principal
// grant-instance-admin` refuses while the principal owns a PAT whose
// secret someone else set, or is the principal of a client or pool,
// naming them and changing nothing. Once they are gone, or for a
// principal whose PATs the operator (the CLI) made, the grant succeeds.
func TestGrantInstanceAdminRefusesOthersCredentials(t *testing.T) {
	t.Parallel()
	s, cli, newPrincipal, orgAdmin := startPromotionServer(t)
	ctx := t.Context()
	orgs := func(token string) stsv1connect.OrganizationServiceClient {
		return stsv1connect.NewOrganizationServiceClient(h2cClient(token), s.api)
	}

	// A PAT the organization administrator minted for ops.
	ops := newPrincipal("ops")
	if code, out, e := cli("pat", "create", "--user", ops, "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin"); code != 0 {
		t.Fatalf("pat create for ops = %d %q %q", code, out, e) // the operator's: no obstacle
	}
	planted, err := gitpodv1connect.NewUserServiceClient(h2cClient(orgAdmin), s.api).CreatePersonalAccessToken(ctx,
		&gitpodv1.CreatePersonalAccessTokenRequest{UserId: ops, Scopes: []string{"*", "sts:admin"}, ValidFor: durationpb.New(48 * time.Hour)})
	if err != nil {
		t.Fatalf("org admin CreatePersonalAccessToken for ops: %v", err)
	}
	plantedID := planted.GetPersonalAccessToken().GetId()
	code, _, e := cli("principal", "grant-instance-admin", ops)
	if code == 0 || !strings.Contains(e, plantedID) {
		t.Errorf("grant-instance-admin of ops holding the org admin's PAT = %d %q, want refused naming PAT %s", code, e, plantedID)
	}
	if _, err := orgs(planted.GetToken()).CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: "globex"}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("the org admin's PAT for ops CreateOrganization after the refused grant = %v, want permission_denied", err)
	}
	if code, out, e := cli("pat", "revoke", plantedID); code != 0 {
		t.Fatalf("pat revoke = %d %q %q", code, out, e)
	}
	if code, _, e := cli("principal", "grant-instance-admin", ops); code != 0 {
		t.Errorf("grant-instance-admin of ops with its own and the operator's PATs only = %d %s", code, e)
	}

	// A client the organization administrator bound to a service account.
	sa, err := stsv1connect.NewPrincipalServiceClient(h2cClient(orgAdmin), s.api).CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
		OrganizationId: s.orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "bot"})
	if err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	bot := sa.GetPrincipal().GetId()
	cr, err := stsv1connect.NewClientServiceClient(h2cClient(orgAdmin), s.api).CreateClient(ctx, &stsv1.CreateClientRequest{
		OrganizationId: s.orgID, PrincipalId: bot, GrantTypes: []string{"client_credentials"},
		Scopes: []string{"sts:admin"}, Audiences: []string{s.r.base}})
	if err != nil {
		t.Fatalf("org admin CreateClient: %v", err)
	}
	code, _, e = cli("principal", "grant-instance-admin", bot)
	if code == 0 || !strings.Contains(e, cr.GetClient().GetId()) {
		t.Errorf("grant-instance-admin of a client's service account = %d %q, want refused naming client %s", code, e, cr.GetClient().GetId())
	}
	cc := clientcredentials.Config{ClientID: cr.GetClient().GetId(), ClientSecret: cr.GetClientSecret(),
		TokenURL: s.r.base + "/oauth2/token", Scopes: []string{"sts:admin"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if _, err := orgs(tok.AccessToken).CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: "initech"}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("the org admin's client token CreateOrganization after the refused grant = %v, want permission_denied", err)
	}

	// A pool the organization administrator bound to a user: its tokens
	// are that user's.
	dev := newPrincipal("dev")
	if _, err := stsv1connect.NewPoolServiceClient(h2cClient(orgAdmin), s.api).CreatePool(ctx, &stsv1.CreatePoolRequest{
		PoolId: "dev-ci", OrganizationId: s.orgID, PrincipalId: dev, Condition: "true"}); err != nil {
		t.Fatalf("org admin CreatePool bound to dev: %v", err)
	}
	if code, _, e := cli("principal", "grant-instance-admin", dev); code == 0 || !strings.Contains(e, "pool dev-ci") {
		t.Errorf("grant-instance-admin of a pool's principal = %d %q, want refused naming pool dev-ci", code, e)
	}
}

// startPromotionServer starts a real server for the A-76 tests: the CLI on
// its data directory, a way to make users of its organization, and the
// secret of an organization administrator's PAT (minted by the CLI for a
// user of its own).
func startPromotionServer(t *testing.T) (s *adminServer, cli func(args ...string) (int, string, string), newPrincipal func(name string) string, orgAdmin string) {
	t.Helper()
	s = startAdminServer(t)
	cli = func(args ...string) (int, string, string) {
		return runCLI(t, append(args, "--data-dir", s.dir)...)
	}
	newPrincipal = func(name string) string {
		code, out, e := cli("principal", "create", "--org", s.orgID, "--name", name)
		if code != 0 {
			t.Fatalf("principal create %s = %d %s", name, code, e)
		}
		return strings.TrimSpace(out)
	}
	code, out, e := cli("pat", "create", "--user", newPrincipal("acme-admin"), "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
	orgAdmin = patRE.FindString(out)
	if code != 0 || orgAdmin == "" {
		t.Fatalf("pat create = %d %q %q", code, out, e)
	}
	return s, cli, newPrincipal, orgAdmin
}
