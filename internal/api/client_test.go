package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/opensts/sts/internal/clientauth"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// newPostgresStore is a migrated PostgreSQL store in a schema of its own
// (skipped without STS_TEST_POSTGRES_DSN outside CI).
func newPostgresStore(t testing.TB) storage.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return s
}

// onBackends runs fn with an env over SQLite and over PostgreSQL.
func onBackends(t *testing.T, fn func(t *testing.T, e *env)) {
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) { fn(t, newEnvOn(t, open(t), nil)) })
	}
}

// serviceAccount creates a service-account principal in the env's
// organization.
func (e *env) serviceAccount(name string) storage.Principal {
	e.t.Helper()
	p, err := CreatePrincipal(context.Background(), e.store, testCaller, e.org.ID, storage.PrincipalServiceAccount, name, "", time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// authenticates reports whether id and sec pass the token endpoint's
// client authentication (clientauth over the same store and pepper).
func (e *env) authenticates(id, sec string) bool {
	e.t.Helper()
	a := &clientauth.Authenticator{Store: e.store, Pepper: testPepper}
	r := httptest.NewRequest("POST", "/oauth2/token", nil)
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	res, err := a.Authenticate(context.Background(), r, url.Values{}, clientauth.Required)
	return err == nil && res != nil && res.Client.ID == id
}

// clientCount is the number of stored clients, read straight from storage.
func (e *env) clientCount() int {
	e.t.Helper()
	l, err := e.store.ListClients(context.Background(), "")
	if err != nil {
		e.t.Fatal(err)
	}
	return len(l)
}

// leaks fails if msg's JSON carries sec or the stored digest of sec in any
// encoding.
func leaks(t *testing.T, what string, msg proto.Message, sec string) {
	t.Helper()
	b, err := protojson.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	d := secret.Digest(testPepper, sec)
	for _, needle := range []string{sec, base64.StdEncoding.EncodeToString(d), base64.RawURLEncoding.EncodeToString(d), hex.EncodeToString(d)} {
		if strings.Contains(string(b), needle) {
			t.Errorf("%s carries the client secret or its digest: %s", what, b)
		}
	}
}

func testJWKS(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClientService runs every ClientService RPC with generated clients
// over Connect, Connect JSON (under /api), gRPC and gRPC-Web, on SQLite
// and PostgreSQL: the secret is returned once and works at client
// authentication, reads never carry it, update/rotate/delete take effect
// at once.
func TestClientService(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, e *env) {
		for name, c := range e.protocols() {
			t.Run(name, func(t *testing.T) {
				sa := e.serviceAccount("ci-" + name)
				cr, err := c.client.CreateClient(as(e.admin), &stsv1.CreateClientRequest{
					OrganizationId: e.org.ID, PrincipalId: sa.ID, Name: "ci",
					GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Scopes: []string{"read"}, Audiences: []string{"https://api.example"},
				})
				if err != nil {
					t.Fatalf("CreateClient: %v", err)
				}
				cl, sec := cr.GetClient(), cr.GetClientSecret()
				if secret.PrefixClientSecret.Parse(sec) != nil || !cl.GetHasSecret() || cl.GetPrincipalId() != sa.ID ||
					cl.GetAuthMethod() != stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_CLIENT_SECRET_BASIC || cl.GetCreatedAt() == nil {
					t.Fatalf("CreateClient = %v", cr)
				}
				if !e.authenticates(cl.GetId(), sec) {
					t.Fatal("the returned secret does not authenticate the client")
				}
				g, err := c.client.GetClient(as(e.admin), &stsv1.GetClientRequest{ClientId: cl.GetId()})
				if err != nil || !proto.Equal(g.GetClient(), cl) {
					t.Fatalf("GetClient = %v, %v; want %v", g, err, cl)
				}
				leaks(t, "GetClient", g, sec)
				l, err := c.client.ListClients(as(e.admin), &stsv1.ListClientsRequest{OrganizationId: e.org.ID})
				if err != nil || len(l.GetClients()) == 0 {
					t.Fatalf("ListClients = %v, %v", l, err)
				}
				leaks(t, "ListClients", l, sec)
				all, err := c.client.ListClients(as(e.admin), &stsv1.ListClientsRequest{})
				if err != nil || len(all.GetClients()) != len(l.GetClients()) {
					t.Errorf("ListClients (all) = %d clients, %v; want %d", len(all.GetClients()), err, len(l.GetClients()))
				}

				// Disable, rename and clear the scopes in one update.
				up, err := c.client.UpdateClient(as(e.admin), &stsv1.UpdateClientRequest{
					ClientId: cl.GetId(), Disabled: new(true), Name: new("ci-2"), Scopes: &stsv1.StringList{},
				})
				if err != nil || !up.GetClient().GetDisabled() || up.GetClient().GetName() != "ci-2" || len(up.GetClient().GetScopes()) != 0 ||
					len(up.GetClient().GetAudiences()) != 1 {
					t.Fatalf("UpdateClient = %v, %v", up, err)
				}
				if e.authenticates(cl.GetId(), sec) {
					t.Error("a disabled client authenticates")
				}
				if _, err := c.client.UpdateClient(as(e.admin), &stsv1.UpdateClientRequest{ClientId: cl.GetId(), Disabled: new(false)}); err != nil || !e.authenticates(cl.GetId(), sec) {
					t.Errorf("re-enable: %v", err)
				}

				rot, err := c.client.RotateClientSecret(as(e.admin), &stsv1.RotateClientSecretRequest{ClientId: cl.GetId()})
				if err != nil || rot.GetClientSecret() == sec || secret.PrefixClientSecret.Parse(rot.GetClientSecret()) != nil {
					t.Fatalf("RotateClientSecret = %v, %v", rot, err)
				}
				if e.authenticates(cl.GetId(), sec) || !e.authenticates(cl.GetId(), rot.GetClientSecret()) {
					t.Error("after rotation the old secret must fail and the new one work")
				}

				// A private_key_jwt client: no secret, keys replaceable.
				jr, err := c.client.CreateClient(as(e.admin), &stsv1.CreateClientRequest{
					OrganizationId: e.org.ID, PrincipalId: sa.ID, AuthMethod: stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_PRIVATE_KEY_JWT,
					Jwks: testJWKS(t), GrantTypes: []string{oauth2.GrantTypeJWTBearer},
				})
				if err != nil || jr.GetClientSecret() != "" || jr.GetClient().GetHasSecret() || jr.GetClient().GetJwks() == "" {
					t.Fatalf("CreateClient private_key_jwt = %v, %v", jr, err)
				}
				_, err = c.client.RotateClientSecret(as(e.admin), &stsv1.RotateClientSecretRequest{ClientId: jr.GetClient().GetId()})
				wantCode(t, "rotate a private_key_jwt client", err, connect.CodeFailedPrecondition)
				ju, err := c.client.UpdateClient(as(e.admin), &stsv1.UpdateClientRequest{
					ClientId: jr.GetClient().GetId(), Keys: &stsv1.UpdateClientRequest_JwksUri{JwksUri: "https://keys.example/jwks.json"},
				})
				if err != nil || ju.GetClient().GetJwks() != "" || ju.GetClient().GetJwksUri() != "https://keys.example/jwks.json" {
					t.Errorf("UpdateClient keys = %v, %v", ju, err)
				}

				for _, id := range []string{cl.GetId(), jr.GetClient().GetId()} {
					if _, err := c.client.DeleteClient(as(e.admin), &stsv1.DeleteClientRequest{ClientId: id}); err != nil {
						t.Fatalf("DeleteClient: %v", err)
					}
				}
				if e.authenticates(cl.GetId(), rot.GetClientSecret()) {
					t.Error("a deleted client authenticates")
				}
				_, err = c.client.GetClient(as(e.admin), &stsv1.GetClientRequest{ClientId: cl.GetId()})
				wantCode(t, "get after delete", err, connect.CodeNotFound)
				_, err = c.client.DeleteClient(as(e.admin), &stsv1.DeleteClientRequest{ClientId: cl.GetId()})
				wantCode(t, "delete twice", err, connect.CodeNotFound)
			})
		}
	})
}

// TestClientServiceBadInput: each bad request gets its code and a message
// naming the field, and writes nothing (the stored count is unchanged).
func TestClientServiceBadInput(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, e *env) {
		sa := e.serviceAccount("ci")
		other, err := CreateOrganization(t.Context(), e.store, testCaller, "beta", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		alien, err := CreatePrincipal(t.Context(), e.store, testCaller, other.ID, storage.PrincipalServiceAccount, "theirs", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := e.clients(e.srv.URL)
		valid := func() *stsv1.CreateClientRequest {
			return &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: sa.ID,
				GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Scopes: []string{"read"}}
		}
		tests := []struct {
			name   string
			mutate func(r *stsv1.CreateClientRequest)
			code   connect.Code
			msg    string
		}{
			{"no organization", func(r *stsv1.CreateClientRequest) { r.OrganizationId = "" }, connect.CodeInvalidArgument, "organization_id"},
			{"unknown organization", func(r *stsv1.CreateClientRequest) { r.OrganizationId = storage.NewID() }, connect.CodeNotFound, "organization not found"},
			{"no principal", func(r *stsv1.CreateClientRequest) { r.PrincipalId = "" }, connect.CodeInvalidArgument, "principal_id"},
			{"unknown principal", func(r *stsv1.CreateClientRequest) { r.PrincipalId = storage.NewID() }, connect.CodeNotFound, "principal not found"},
			{"principal of another organization", func(r *stsv1.CreateClientRequest) { r.PrincipalId = alien.ID }, connect.CodeNotFound, "principal not found"},
			{"user principal", func(r *stsv1.CreateClientRequest) { r.PrincipalId = e.user.ID }, connect.CodeInvalidArgument, "SERVICE_ACCOUNT"},
			{"unknown auth method", func(r *stsv1.CreateClientRequest) { r.AuthMethod = 42 }, connect.CodeInvalidArgument, "auth_method"},
			{"no grant type", func(r *stsv1.CreateClientRequest) { r.GrantTypes = nil }, connect.CodeInvalidArgument, "grant_types"},
			{"unknown grant type", func(r *stsv1.CreateClientRequest) { r.GrantTypes = []string{"password"} }, connect.CodeInvalidArgument, "grant_types[0]"},
			{"scope with a space", func(r *stsv1.CreateClientRequest) { r.Scopes = []string{"a b"} }, connect.CodeInvalidArgument, "scopes[0]"},
			{"too many audiences", func(r *stsv1.CreateClientRequest) {
				r.Audiences = strings.Fields(strings.Repeat("aud ", 101))
			}, connect.CodeInvalidArgument, "audiences: at most 100"},
			{"bad pool", func(r *stsv1.CreateClientRequest) { r.Pools = []string{"a/b"} }, connect.CodeInvalidArgument, "pools[0]"},
			{"long name", func(r *stsv1.CreateClientRequest) { r.Name = strings.Repeat("n", 201) }, connect.CodeInvalidArgument, "name"},
			{"jwks on a secret client", func(r *stsv1.CreateClientRequest) { r.Jwks = testJWKS(t) }, connect.CodeInvalidArgument, "jwks"},
			{"private_key_jwt without keys", func(r *stsv1.CreateClientRequest) {
				r.AuthMethod = stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_PRIVATE_KEY_JWT
			}, connect.CodeInvalidArgument, "exactly one of jwks and jwks_uri"},
			{"private_key_jwt with a bad jwks", func(r *stsv1.CreateClientRequest) {
				r.AuthMethod, r.Jwks = stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_PRIVATE_KEY_JWT, `{"keys":"nope"}`
			}, connect.CodeInvalidArgument, "jwks:"},
			{"private_key_jwt with an http jwks_uri", func(r *stsv1.CreateClientRequest) {
				r.AuthMethod, r.JwksUri = stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_PRIVATE_KEY_JWT, "http://keys.example/jwks"
			}, connect.CodeInvalidArgument, "jwks_uri"},
		}
		for _, tc := range tests {
			before := e.clientCount()
			r := valid()
			tc.mutate(r)
			res, err := c.client.CreateClient(as(e.admin), r)
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s: err = %v, want %v naming %q", tc.name, err, tc.code, tc.msg)
			}
			if res != nil || e.clientCount() != before {
				t.Errorf("%s: a client was written or returned", tc.name)
			}
		}

		cr, err := c.client.CreateClient(as(e.admin), valid())
		if err != nil {
			t.Fatal(err)
		}
		id := cr.GetClient().GetId()
		updates := []struct {
			name string
			req  *stsv1.UpdateClientRequest
			code connect.Code
			msg  string
		}{
			{"nothing set", &stsv1.UpdateClientRequest{ClientId: id}, connect.CodeInvalidArgument, "nothing to update"},
			{"no client id", &stsv1.UpdateClientRequest{Disabled: new(true)}, connect.CodeInvalidArgument, "client_id"},
			{"unknown client", &stsv1.UpdateClientRequest{ClientId: storage.NewID(), Disabled: new(true)}, connect.CodeNotFound, "client not found"},
			{"bad scope with a valid name", &stsv1.UpdateClientRequest{ClientId: id, Name: new("x"), Scopes: &stsv1.StringList{Values: []string{"ok", "\"no\""}}}, connect.CodeInvalidArgument, "scopes[1]"},
			{"no grant types", &stsv1.UpdateClientRequest{ClientId: id, GrantTypes: &stsv1.StringList{}}, connect.CodeInvalidArgument, "grant_types"},
			{"keys on a secret client", &stsv1.UpdateClientRequest{ClientId: id, Keys: &stsv1.UpdateClientRequest_JwksUri{JwksUri: "https://k.example/jwks"}}, connect.CodeFailedPrecondition, "private_key_jwt"},
		}
		for _, u := range updates {
			_, err := c.client.UpdateClient(as(e.admin), u.req)
			if connect.CodeOf(err) != u.code || !strings.Contains(err.Error(), u.msg) {
				t.Errorf("update %s: err = %v, want %v naming %q", u.name, err, u.code, u.msg)
			}
		}
		g, err := c.client.GetClient(as(e.admin), &stsv1.GetClientRequest{ClientId: id})
		if err != nil || !proto.Equal(g.GetClient(), cr.GetClient()) {
			t.Errorf("after refused updates GetClient = %v, %v; want unchanged %v", g, err, cr.GetClient())
		}
		_, err = c.client.ListClients(as(e.admin), &stsv1.ListClientsRequest{OrganizationId: storage.NewID()})
		wantCode(t, "list an unknown organization", err, connect.CodeNotFound)
	})
}

// TestClientServiceAuthz: without a credential every RPC is
// unauthenticated, with a credential lacking sts:admin (even "*") it is
// permission_denied, and nothing is written either way.
func TestClientServiceAuthz(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sa := e.serviceAccount("ci")
	c := e.clients(e.srv.URL)
	cr, err := c.client.CreateClient(as(e.admin), &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: sa.ID,
		GrantTypes: []string{oauth2.GrantTypeClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	id, sec := cr.GetClient().GetId(), cr.GetClientSecret()
	calls := map[string]func(ctx context.Context) error{
		"CreateClient": func(ctx context.Context) error {
			_, err := c.client.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: sa.ID,
				GrantTypes: []string{oauth2.GrantTypeClientCredentials}})
			return err
		},
		"GetClient": func(ctx context.Context) error {
			_, err := c.client.GetClient(ctx, &stsv1.GetClientRequest{ClientId: id})
			return err
		},
		"ListClients": func(ctx context.Context) error {
			_, err := c.client.ListClients(ctx, &stsv1.ListClientsRequest{})
			return err
		},
		"UpdateClient": func(ctx context.Context) error {
			_, err := c.client.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: id, Disabled: new(true)})
			return err
		},
		"RotateClientSecret": func(ctx context.Context) error {
			_, err := c.client.RotateClientSecret(ctx, &stsv1.RotateClientSecretRequest{ClientId: id})
			return err
		},
		"DeleteClient": func(ctx context.Context) error {
			_, err := c.client.DeleteClient(ctx, &stsv1.DeleteClientRequest{ClientId: id})
			return err
		},
	}
	readOnly := e.mintPAT(e.user.ID, pat.ScopeIdentityRead)
	for name, call := range calls {
		wantCode(t, name+" without a credential", call(as("")), connect.CodeUnauthenticated)
		wantCode(t, name+" with a bad credential", call(as(pat.PrefixPAT.Generate())), connect.CodeUnauthenticated)
		wantCode(t, name+" with full access but not sts:admin", call(as(e.secret)), connect.CodePermissionDenied)
		wantCode(t, name+" with identity:read", call(as(readOnly)), connect.CodePermissionDenied)
	}
	if n := e.clientCount(); n != 1 {
		t.Errorf("%d clients stored, want the 1 the admin created", n)
	}
	got, err := e.store.GetClient(t.Context(), id)
	if err != nil || got.Disabled || !e.authenticates(id, sec) {
		t.Errorf("an unauthorized call changed the client: %+v, %v", got, err)
	}
}

// TestClientServiceGRPCGo creates and reads a client with grpc-go itself.
func TestClientServiceGRPCGo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sa := e.serviceAccount("ci")
	conn := grpcConn(t, e.srv)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.admin)
	cr := &stsv1.CreateClientResponse{}
	err := conn.Invoke(ctx, "/sts.v1.ClientService/CreateClient", &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: sa.ID,
		AuthMethod: stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_CLIENT_SECRET_POST, GrantTypes: []string{oauth2.GrantTypeClientCredentials}}, cr)
	if err != nil || secret.PrefixClientSecret.Parse(cr.GetClientSecret()) != nil ||
		cr.GetClient().GetAuthMethod() != stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_CLIENT_SECRET_POST {
		t.Fatalf("CreateClient = %v, %v", cr, err)
	}
	g := &stsv1.GetClientResponse{}
	if err := conn.Invoke(ctx, "/sts.v1.ClientService/GetClient", &stsv1.GetClientRequest{ClientId: cr.GetClient().GetId()}, g); err != nil ||
		!proto.Equal(g.GetClient(), cr.GetClient()) {
		t.Fatalf("GetClient = %v, %v", g, err)
	}
	leaks(t, "GetClient over gRPC", g, cr.GetClientSecret())
	err = conn.Invoke(ctx, "/sts.v1.ClientService/GetClient", &stsv1.GetClientRequest{ClientId: storage.NewID()}, g)
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown client over gRPC: %v", err)
	}
	err = conn.Invoke(ctx, "/sts.v1.ClientService/CreateClient", &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: sa.ID}, cr)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "grant_types") {
		t.Errorf("bad input over gRPC: %v", err)
	}
	err = conn.Invoke(t.Context(), "/sts.v1.ClientService/ListClients", &stsv1.ListClientsRequest{}, &stsv1.ListClientsResponse{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("no credential over gRPC: %v", err)
	}
}

// TestClientServiceCurlJSON: the plain-JSON Connect form a curl user
// sends, camelCase fields and enum names; the secret is in the create
// response only.
func TestClientServiceCurlJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sa := e.serviceAccount("ci")
	code, h, m := post(t, e, "/api/sts.v1.ClientService/CreateClient", e.admin,
		`{"organizationId":"`+e.org.ID+`","principalId":"`+sa.ID+`","name":"ci","authMethod":"CLIENT_AUTH_METHOD_CLIENT_SECRET_POST",`+
			`"grantTypes":["client_credentials"],"scopes":["read"],"audiences":["https://api.example"]}`)
	cl, _ := m["client"].(map[string]any)
	sec, _ := m["clientSecret"].(string)
	if code != 200 || cl["hasSecret"] != true || cl["authMethod"] != "CLIENT_AUTH_METHOD_CLIENT_SECRET_POST" || h.Get("Cache-Control") != "no-store" ||
		secret.PrefixClientSecret.Parse(sec) != nil {
		t.Fatalf("CreateClient = %d %v %v", code, m, h)
	}
	if _, ok := cl["secretDigest"]; ok {
		t.Error("the create response carries a digest")
	}
	id, _ := cl["id"].(string)
	for _, base := range []string{"/api", ""} {
		code, _, m = post(t, e, base+"/sts.v1.ClientService/GetClient", e.admin, `{"clientId":"`+id+`"}`)
		b, _ := json.Marshal(m)
		if code != 200 || m["client"].(map[string]any)["id"] != id || strings.Contains(string(b), sec) || strings.Contains(string(b), "clientSecret") {
			t.Errorf("%s GetClient = %d %s", base, code, b)
		}
	}
	code, _, m = post(t, e, "/api/sts.v1.ClientService/UpdateClient", e.admin, `{"clientId":"`+id+`","disabled":true,"scopes":{"values":[]}}`)
	if cl, _ := m["client"].(map[string]any); code != 200 || cl["disabled"] != true || cl["scopes"] != nil {
		t.Errorf("UpdateClient = %d %v", code, m)
	}
	code, _, m = post(t, e, "/api/sts.v1.ClientService/CreateClient", e.admin,
		`{"organizationId":"`+e.org.ID+`","principalId":"`+sa.ID+`","grantTypes":["password"]}`)
	if code != 400 || m["code"] != "invalid_argument" || !strings.Contains(m["message"].(string), "grant_types[0]") {
		t.Errorf("bad CreateClient = %d %v", code, m)
	}
	code, _, m = post(t, e, "/api/sts.v1.ClientService/ListClients", e.secret, `{}`)
	if code != 403 || m["code"] != "permission_denied" {
		t.Errorf("ListClients without sts:admin = %d %v", code, m)
	}
	code, _, m = post(t, e, "/api/sts.v1.ClientService/ListClients", "", `{}`)
	if code != 401 || m["code"] != "unauthenticated" {
		t.Errorf("ListClients without a credential = %d %v", code, m)
	}
	if n := e.clientCount(); n != 1 {
		t.Errorf("%d clients stored, want 1", n)
	}
}
