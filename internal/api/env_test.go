package api

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	clientsvc "github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

const testIssuer = "https://sts.test"

// env is a real API over HTTP/2 TLS on loopback with a migrated SQLite
// store, one organization, a user with a full-access PAT and an admin.
type env struct {
	t      testing.TB
	store  storage.Store
	pats   *pat.Service
	h      *Handler
	srv    *httptest.Server
	keys   *signer.Static
	org    storage.Organization
	user   storage.Principal
	secret string // user's PAT, full access
	admin  string // admin's PAT, sts:admin + full access; an instance administrator
}

// testPepper keys the PAT and client-secret digests of the env.
var testPepper = []byte("0123456789abcdef0123456789abcdef")

func newEnv(t testing.TB, mutate func(h *Handler)) *env {
	t.Helper()
	return newEnvOn(t, newSQLiteStore(t), mutate)
}

// newEnvOn is newEnv over store (a migrated, empty SQLite or PostgreSQL
// store).
func newEnvOn(t testing.TB, store storage.Store, mutate func(h *Handler)) *env {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	org, err := CreateOrganization(ctx, store, testCaller, "acme", "enterprise", now)
	if err != nil {
		t.Fatal(err)
	}
	user, err := CreatePrincipal(ctx, store, testCaller, org.ID, storage.PrincipalUser, "ada", "ada@example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := CreatePrincipal(ctx, store, testCaller, org.ID, storage.PrincipalUser, "admin", "", now)
	if err != nil {
		t.Fatal(err)
	}
	// The env's admin is an instance administrator, as the bootstrap admin is.
	if err := store.UpdatePrincipal(ctx, adm.ID, func(p storage.Principal) (storage.Principal, error) {
		p.InstanceAdmin = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(store, testPepper)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := clientsvc.NewService(store, testPepper)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{
		Store: store, PATs: pats, Clients: cs, Audience: testIssuer,
		Issuer:   &tokens.Issuer{Signer: keys, IssuerURL: testIssuer},
		Verifier: &tokens.Verifier{Keys: keys, Issuer: testIssuer, Revocations: tokens.StoreRevocations{Store: store}},
	}
	if mutate != nil {
		mutate(h)
	}
	e := &env{t: t, store: store, pats: pats, h: h, keys: keys, org: org, user: user}
	e.secret = e.mintPAT(user.ID, pat.ScopeFull)
	e.admin = e.mintPAT(adm.ID, pat.ScopeFull, pat.ScopeAdmin)
	mux := http.NewServeMux()
	h.Mount(mux)
	e.srv = httptest.NewUnstartedServer(mux)
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) mintPAT(owner string, scopes ...string) string {
	e.t.Helper()
	_, s, err := e.pats.Create(context.Background(), pat.Caller{Actor: "test"}, pat.CreateInput{
		OwnerID: owner, Scopes: scopes, ExpiresAt: time.Now().Add(30 * 24 * time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// clients are generated Connect clients speaking one protocol.
type clients struct {
	identity  gitpodv1connect.IdentityServiceClient
	user      gitpodv1connect.UserServiceClient
	org       stsv1connect.OrganizationServiceClient
	principal stsv1connect.PrincipalServiceClient
	client    stsv1connect.ClientServiceClient
}

func (e *env) clients(base string, opts ...connect.ClientOption) clients {
	c := e.srv.Client()
	return clients{
		identity:  gitpodv1connect.NewIdentityServiceClient(c, base, opts...),
		user:      gitpodv1connect.NewUserServiceClient(c, base, opts...),
		org:       stsv1connect.NewOrganizationServiceClient(c, base, opts...),
		principal: stsv1connect.NewPrincipalServiceClient(c, base, opts...),
		client:    stsv1connect.NewClientServiceClient(c, base, opts...),
	}
}

// protocols are the client variants every RPC test runs with, at / and
// under /api.
func (e *env) protocols() map[string]clients {
	return map[string]clients{
		"connect":          e.clients(e.srv.URL),
		"connect-json-api": e.clients(e.srv.URL+"/api", connect.WithProtoJSON()),
		"grpc":             e.clients(e.srv.URL, connect.WithGRPC()),
		"grpc-web-api":     e.clients(e.srv.URL+"/api", connect.WithGRPCWeb()),
	}
}

// as returns a client context that sends token as the bearer credential.
func as(token string) context.Context {
	ctx, info := connect.NewClientContext(context.Background())
	if token != "" {
		info.RequestHeader().Set("Authorization", "Bearer "+token)
	}
	return ctx
}

// newSQLiteStore is a migrated SQLite store in t.TempDir(), a copy of one
// migrated once per test binary (sqlitetest, since ststest pulls in cli and
// config).
func newSQLiteStore(t testing.TB) storage.Store {
	t.Helper()
	return sqlitetest.NewStore(t)
}

// grpcConn is a grpc-go connection to srv over its TLS (HTTP/2), closed
// when the test ends: the reference gRPC implementation as the client.
func grpcConn(t *testing.T, srv *httptest.Server) *grpc.ClientConn {
	t.Helper()
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	conn, err := grpc.NewClient("passthrough:///"+srv.Listener.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: tlsConf.RootCAs, ServerName: "example.com"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// testCaller is the actor of the records tests create directly.
var testCaller = pat.Caller{Actor: "test"}
