package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestServeClientServiceAPI drives sts.v1.ClientService through the real
// server on SQLite and PostgreSQL: an admin PAT from the CLI creates a
// service account and a client over the API, x/oauth2/clientcredentials
// gets a token with the returned secret, a rotation through the API
// refuses the old secret at once and the new one works, disabling and
// deleting through the API refuse the client at once. The CLI sees the
// same clients and refuses the same bad input, and no secret reaches the
// server log.
func TestServeClientServiceAPI(t *testing.T) {
	t.Parallel()
	onBothBackends(t, testServeClientServiceAPI)
}

func testServeClientServiceAPI(t *testing.T) {
	s := startAdminServer(t)
	r, dir, api, admin, notAdmin, orgID := s.r, s.dir, s.api, s.admin, s.notAdmin, s.orgID
	httpClient := h2cClient
	ctx := t.Context()
	sa, err := stsv1connect.NewPrincipalServiceClient(httpClient(admin), api).CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
		OrganizationId: orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "ci-bot"})
	if err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	saID := sa.GetPrincipal().GetId()

	cs := stsv1connect.NewClientServiceClient(httpClient(admin), api)
	cr, err := cs.CreateClient(ctx, &stsv1.CreateClientRequest{
		OrganizationId: orgID, PrincipalId: saID, Name: "ci",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, Audiences: []string{r.base},
	})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	id, sec := cr.GetClient().GetId(), cr.GetClientSecret()
	if !strings.HasPrefix(sec, "sts_cs_") || !cr.GetClient().GetHasSecret() {
		t.Fatalf("CreateClient = %v", cr)
	}

	// The secret works at the real token endpoint.
	cc := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: r.base + "/oauth2/token", Scopes: []string{"read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("clientcredentials with the API's secret: %v", err)
	}
	claims := jwtClaims(t, tok.AccessToken)
	if claims["sub"] != saID || claims["org_id"] != orgID || claims["client_id"] != id || claims["principal"] != "SERVICE_ACCOUNT" {
		t.Errorf("token claims = %v, want the service account of organization %s", claims, orgID)
	}
	grant := func(sec string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", r.base+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, sec)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Reads over gRPC never carry the secret.
	grpcCS := stsv1connect.NewClientServiceClient(httpClient(admin), api, connect.WithGRPC())
	g, err := grpcCS.GetClient(ctx, &stsv1.GetClientRequest{ClientId: id})
	if err != nil || !proto.Equal(g.GetClient(), cr.GetClient()) {
		t.Fatalf("GetClient over gRPC = %v, %v", g, err)
	}
	l, err := grpcCS.ListClients(ctx, &stsv1.ListClientsRequest{OrganizationId: orgID})
	if err != nil || len(l.GetClients()) != 1 {
		t.Fatalf("ListClients over gRPC = %v, %v", l, err)
	}
	for _, m := range []proto.Message{g, l} {
		if b, _ := protojson.Marshal(m); strings.Contains(string(b), sec) {
			t.Errorf("a read carries the secret: %s", b)
		}
	}

	// Rotation through the API: the old secret is refused at once.
	rot, err := cs.RotateClientSecret(ctx, &stsv1.RotateClientSecretRequest{ClientId: id})
	if err != nil {
		t.Fatalf("RotateClientSecret: %v", err)
	}
	newSec := rot.GetClientSecret()
	if got := grant(sec); got != http.StatusUnauthorized {
		t.Errorf("old secret right after rotation = %d, want 401", got)
	}
	cc.ClientSecret = newSec
	if _, err := cc.Token(ctx); err != nil {
		t.Errorf("clientcredentials with the rotated secret: %v", err)
	}

	// The CLI sees the same client, and refuses what the API refuses.
	code, out, errOut := runCLI(t, "client", "list", "--data-dir", dir, "--org", "default")
	if code != 0 || !strings.Contains(out, id) {
		t.Errorf("client list = %d %q %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "client", "show", "--data-dir", dir, id)
	if code != 0 || !strings.Contains(out, "has_secret: true") || strings.Contains(out, newSec) {
		t.Errorf("client show = %d %q", code, out)
	}
	code, _, errOut = runCLI(t, "client", "create", "--data-dir", dir, "--org", "default", "--principal", "admin")
	if code == 0 || !strings.Contains(errOut, "SERVICE_ACCOUNT") {
		t.Errorf("client create for a user = %d %q, want refused naming SERVICE_ACCOUNT", code, errOut)
	}
	code, _, errOut = runCLI(t, "client", "update", "--data-dir", dir, id, "--scope", "a b")
	if code == 0 || !strings.Contains(errOut, "scopes[0]") {
		t.Errorf("client update with a bad scope = %d %q", code, errOut)
	}
	if code, out, errOut = runCLI(t, "client", "update", "--data-dir", dir, id, "--name", "renamed"); code != 0 {
		t.Errorf("client update = %d %q %q", code, out, errOut)
	}
	_, err = cs.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: orgID, PrincipalId: saID, GrantTypes: []string{"password"}})
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "grant_types[0]") {
		t.Errorf("CreateClient with an unknown grant type: %v", err)
	}
	g, err = cs.GetClient(ctx, &stsv1.GetClientRequest{ClientId: id})
	if err != nil || g.GetClient().GetName() != "renamed" || strings.Join(g.GetClient().GetScopes(), " ") != "read" {
		t.Errorf("after CLI update GetClient = %v, %v; want renamed with its scopes kept", g, err)
	}
	if l, err := cs.ListClients(ctx, &stsv1.ListClientsRequest{}); err != nil || len(l.GetClients()) != 1 {
		t.Errorf("refused creates wrote something: %v, %v", l, err)
	}

	// Redirect URIs and public clients, through the API and the CLI.
	pub, err := cs.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: orgID, PrincipalId: saID, Name: "spa",
		AuthMethod: stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_NONE, GrantTypes: []string{"authorization_code"},
		RedirectUris: []string{"https://app.example/cb"}})
	if err != nil || pub.GetClientSecret() != "" || strings.Join(pub.GetClient().GetRedirectUris(), " ") != "https://app.example/cb" {
		t.Errorf("CreateClient(public, redirect_uris) = %v, %v", pub, err)
	}
	if _, err := cs.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: pub.GetClient().GetId(),
		RedirectUris: &stsv1.StringList{Values: []string{"http://evil.example/cb"}}}); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "redirect_uris") {
		t.Errorf("UpdateClient with a plain-http redirect URI: %v", err)
	}
	code, out, errOut = runCLI(t, "client", "create", "--data-dir", dir, "--org", "default", "--principal", saID, "--public",
		"--redirect-uri", "http://127.0.0.1:8400/cb", "--scope", "openid")
	cliPub := strings.TrimSpace(out)
	if code != 0 || strings.Contains(out, "sts_cs_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("client create --public --redirect-uri = %d %q %q", code, out, errOut)
	}
	if code, out, _ = runCLI(t, "client", "show", "--data-dir", dir, cliPub); code != 0 ||
		!strings.Contains(out, "redirect_uris: [http://127.0.0.1:8400/cb]") || !strings.Contains(out, "grant_types: [authorization_code]") ||
		!strings.Contains(out, "auth_method: none") {
		t.Errorf("client show of the public client = %d %q", code, out)
	}
	// require_pkce (docs/security.md T-90): true by default, false only
	// for a confidential client, through the API and the CLI.
	if !pub.GetClient().GetRequirePkce() {
		t.Errorf("a client created without require_pkce: %v, want require_pkce true", pub.GetClient())
	}
	_, err = cs.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: orgID, PrincipalId: saID, Name: "spa2",
		AuthMethod: stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_NONE, GrantTypes: []string{"authorization_code"},
		RedirectUris: []string{"https://app.example/cb"}, RequirePkce: new(false)})
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "require_pkce") {
		t.Errorf("CreateClient(public, require_pkce false): %v, want InvalidArgument naming require_pkce", err)
	}
	if _, err := cs.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: pub.GetClient().GetId(), RequirePkce: new(false)}); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "require_pkce") {
		t.Errorf("UpdateClient(public, require_pkce false): %v, want InvalidArgument naming require_pkce", err)
	}
	proxy, err := cs.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: orgID, PrincipalId: saID, Name: "proxy",
		GrantTypes: []string{"authorization_code"}, RedirectUris: []string{"https://proxy.example/oauth2/callback"}, RequirePkce: new(false)})
	if err != nil || proxy.GetClient().GetRequirePkce() {
		t.Errorf("CreateClient(confidential, require_pkce false) = %v, %v", proxy, err)
	}
	if u, err := cs.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: proxy.GetClient().GetId(), RequirePkce: new(true)}); err != nil || !u.GetClient().GetRequirePkce() {
		t.Errorf("UpdateClient(require_pkce true) = %v, %v", u, err)
	}
	if code, _, errOut = runCLI(t, "client", "update", "--data-dir", dir, cliPub, "--require-pkce=false"); code == 0 || !strings.Contains(errOut, "require_pkce") {
		t.Errorf("client update --require-pkce=false of a public client = %d %q, want refused naming require_pkce", code, errOut)
	}
	if code, _, errOut = runCLI(t, "client", "create", "--data-dir", dir, "--org", "default", "--principal", saID, "--public",
		"--redirect-uri", "http://127.0.0.1:8400/cb", "--require-pkce=false"); code == 0 || !strings.Contains(errOut, "require_pkce") {
		t.Errorf("client create --public --require-pkce=false = %d %q, want refused naming require_pkce", code, errOut)
	}
	code, out, errOut = runCLI(t, "client", "create", "--data-dir", dir, "--org", "default", "--principal", saID,
		"--redirect-uri", "https://proxy.example/oauth2/callback", "--require-pkce=false")
	cliProxy := strings.SplitN(out, "\n", 2)[0]
	if code != 0 || cliProxy == "" {
		t.Fatalf("client create --require-pkce=false = %d %q %q", code, out, errOut)
	}
	if code, out, _ = runCLI(t, "client", "show", "--data-dir", dir, cliProxy); code != 0 || !strings.Contains(out, "require_pkce: false") {
		t.Errorf("client show of a client without PKCE = %d %q", code, out)
	}
	if code, out, _ = runCLI(t, "client", "show", "--data-dir", dir, cliPub); code != 0 || !strings.Contains(out, "require_pkce: true") {
		t.Errorf("client show of the public client = %d %q, want require_pkce: true", code, out)
	}
	for _, id := range []string{pub.GetClient().GetId(), cliPub, proxy.GetClient().GetId(), cliProxy} {
		if _, err := cs.DeleteClient(ctx, &stsv1.DeleteClientRequest{ClientId: id}); err != nil {
			t.Errorf("DeleteClient: %v", err)
		}
	}

	// Authorization: sts:admin is required; "*" is not enough.
	_, err = stsv1connect.NewClientServiceClient(httpClient(notAdmin), api).ListClients(ctx, &stsv1.ListClientsRequest{})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("ListClients without sts:admin: %v", err)
	}
	_, err = stsv1connect.NewClientServiceClient(httpClient(""), api, connect.WithGRPC()).RotateClientSecret(ctx, &stsv1.RotateClientSecretRequest{ClientId: id})
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("RotateClientSecret without a credential: %v", err)
	}

	// Disabled through the API: refused at once; re-enabled: works again.
	if _, err := cs.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: id, Disabled: new(true)}); err != nil {
		t.Fatalf("UpdateClient disable: %v", err)
	}
	if got := grant(newSec); got != http.StatusUnauthorized {
		t.Errorf("disabled client = %d, want 401 at once", got)
	}
	if _, err := cs.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: id, Disabled: new(false)}); err != nil {
		t.Fatalf("UpdateClient enable: %v", err)
	}
	if got := grant(newSec); got != http.StatusOK {
		t.Errorf("re-enabled client = %d, want 200", got)
	}
	if _, err := cs.DeleteClient(ctx, &stsv1.DeleteClientRequest{ClientId: id}); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	if got := grant(newSec); got != http.StatusUnauthorized {
		t.Errorf("deleted client = %d, want 401 at once", got)
	}

	logs := r.stderr.String()
	for _, s := range []string{sec, newSec, admin, notAdmin, tok.AccessToken} {
		if strings.Contains(logs, s) {
			t.Error("a secret or token reached the server log")
		}
	}
	r.stop(t)
}

// jwtClaims decodes a JWT's payload without verifying it (the server's
// own tests verify; this one checks which principal the token is for).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
