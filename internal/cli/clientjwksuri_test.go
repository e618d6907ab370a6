package cli_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestClientJWKSURIHeldToTheFetchRule (docs/security.md F-96): a
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
	cs, saID, create := jwksClients(t, s)
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

// TestClientPrivateJWKSURIAcceptedWithAllowPrivate (docs/security.md F-96,
// T-197): with federation.allow_private the registration rule accepts a
// jwks_uri on the operator's network (10/8, a ULA, 100.64/10), through
// the API (create, update) and the CLI's direct mode, since the fetch
// would call it; the metadata addresses stay refused even then.
func TestClientPrivateJWKSURIAcceptedWithAllowPrivate(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_FEDERATION_ALLOW_PRIVATE", "true")
	s := startAdminServer(t)
	ctx := t.Context()
	cs, saID, create := jwksClients(t, s)
	for _, u := range []string{"https://10.0.0.5/jwks", "https://[fd12:3456::1]/jwks", "https://100.64.0.7:8443/jwks"} {
		c, err := create(u)
		if err != nil {
			t.Errorf("CreateClient(jwks_uri %s) with federation.allow_private: %v, want accepted", u, err)
			continue
		}
		if got := c.GetClient().GetJwksUri(); got != u {
			t.Errorf("CreateClient(jwks_uri %s): stored %q", u, got)
		}
		if _, err := cs.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: c.GetClient().GetId(), Keys: &stsv1.UpdateClientRequest_JwksUri{JwksUri: u + "2"}}); err != nil {
			t.Errorf("UpdateClient(jwks_uri %s2) with federation.allow_private: %v, want accepted", u, err)
		}
		code, _, errOut := runCLI(t, "client", "create", "--data-dir", s.dir, "--org", "default", "--principal", saID,
			"--auth-method", "private_key_jwt", "--jwks-uri", u, "--grant-type", "client_credentials")
		if code != 0 {
			t.Errorf("sts client create --jwks-uri %s with federation.allow_private = %d %q, want accepted", u, code, errOut)
		}
	}
	for _, u := range []string{"https://169.254.169.254/jwks", "https://[fd00:ec2::254]/jwks", "https://[fd20:ce::254]/jwks", "https://100.100.100.200/jwks"} {
		if _, err := create(u); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "jwks_uri") {
			t.Errorf("CreateClient(jwks_uri %s) with federation.allow_private: %v, want InvalidArgument naming jwks_uri", u, err)
		}
	}
}

// jwksClients makes a service account on s and gives the client service,
// the account's id and a CreateClient of a private_key_jwt client of that
// account whose jwks_uri is uri.
func jwksClients(t *testing.T, s *adminServer) (stsv1connect.ClientServiceClient, string, func(uri string) (*stsv1.CreateClientResponse, error)) {
	t.Helper()
	sa, err := stsv1connect.NewPrincipalServiceClient(h2cClient(s.admin), s.api).CreatePrincipal(t.Context(), &stsv1.CreatePrincipalRequest{
		OrganizationId: s.orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "ci-bot"})
	if err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	saID := sa.GetPrincipal().GetId()
	cs := stsv1connect.NewClientServiceClient(h2cClient(s.admin), s.api)
	return cs, saID, func(uri string) (*stsv1.CreateClientResponse, error) {
		return cs.CreateClient(t.Context(), &stsv1.CreateClientRequest{OrganizationId: s.orgID, PrincipalId: saID, Name: "jwt",
			AuthMethod: stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_PRIVATE_KEY_JWT, JwksUri: uri,
			GrantTypes: []string{"client_credentials"}, Audiences: []string{s.r.base}})
	}
}
