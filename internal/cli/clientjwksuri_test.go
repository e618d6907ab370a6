package cli_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestClientJWKSURIHeldToTheFetchRule (docs/security.md F-98): a
// private_key_jwt client's jwks_uri is held, at create and update,
// through the API and the CLI's direct mode, to the rule of the client
// that fetches it (federation.allow_loopback, federation.allow_private):
// the metadata and link-local addresses always, a private address
// without federation.allow_private (this server's default), are refused
// naming jwks_uri, instead of being stored and failing every assertion
// of the client at its first use. A host name is accepted.
func TestClientJWKSURIHeldToTheFetchRule(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)
	ctx := t.Context()
	sa, err := stsv1connect.NewPrincipalServiceClient(h2cClient(s.admin), s.api).CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
		OrganizationId: s.orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "ci-bot"})
	if err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	saID := sa.GetPrincipal().GetId()
	cs := stsv1connect.NewClientServiceClient(h2cClient(s.admin), s.api)
	create := func(uri string) (*stsv1.CreateClientResponse, error) {
		return cs.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: s.orgID, PrincipalId: saID, Name: "jwt",
			AuthMethod: stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_PRIVATE_KEY_JWT, JwksUri: uri,
			GrantTypes: []string{"client_credentials"}, Audiences: []string{s.r.base}})
	}
	refused := []string{"https://169.254.169.254/latest/meta-data/jwks", "https://[fd00:ec2::254]/jwks",
		"https://[fe80::1]/jwks", "https://0.0.0.0/jwks", "https://[64:ff9b::7f00:1]/jwks", "https://10.0.0.5/jwks"}
	ok, err := create("https://keys.example/jwks.json")
	if err != nil {
		t.Fatalf("CreateClient with a host-name jwks_uri: %v", err)
	}
	id := ok.GetClient().GetId()
	for _, u := range refused {
		if _, err := create(u); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "jwks_uri") {
			t.Errorf("CreateClient(jwks_uri %s): %v, want InvalidArgument naming jwks_uri", u, err)
		}
		if _, err := cs.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: id, Keys: &stsv1.UpdateClientRequest_JwksUri{JwksUri: u}}); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "jwks_uri") {
			t.Errorf("UpdateClient(jwks_uri %s): %v, want InvalidArgument naming jwks_uri", u, err)
		}
		code, _, errOut := runCLI(t, "client", "create", "--data-dir", s.dir, "--org", "default", "--principal", saID,
			"--auth-method", "private_key_jwt", "--jwks-uri", u, "--grant-type", "client_credentials")
		if code == 0 || !strings.Contains(errOut, "jwks_uri") {
			t.Errorf("sts client create --jwks-uri %s = %d %q, want refused naming jwks_uri", u, code, errOut)
		}
	}
	g, err := cs.GetClient(ctx, &stsv1.GetClientRequest{ClientId: id})
	if err != nil || g.GetClient().GetJwksUri() != "https://keys.example/jwks.json" {
		t.Errorf("after the refused updates: %v, %v", g, err)
	}
}
