package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// h2c serves e's handler over cleartext HTTP/2 (and HTTP/1.1) on
// loopback, the way a gRPC client reaches sts behind a TLS-terminating
// proxy, and returns its URL and a client that speaks h2c to it.
func (e *env) h2c(t *testing.T) (string, *http.Client) {
	t.Helper()
	mux := http.NewServeMux()
	e.h.Mount(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return srv.URL, &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 30 * time.Second}
}

// gitpodClients are the generated gitpod.v1 clients speaking one protocol.
type gitpodClients struct {
	identity gitpodv1connect.IdentityServiceClient
	user     gitpodv1connect.UserServiceClient
}

// gitpodProtocols are the binary and JSON dialects Gitpod's own clients
// use, over h2c: Connect with protobuf, Connect with JSON, gRPC.
func (e *env) gitpodProtocols(t *testing.T) map[string]gitpodClients {
	url, hc := e.h2c(t)
	mk := func(opts ...connect.ClientOption) gitpodClients {
		return gitpodClients{
			identity: gitpodv1connect.NewIdentityServiceClient(hc, url, opts...),
			user:     gitpodv1connect.NewUserServiceClient(hc, url, opts...),
		}
	}
	return map[string]gitpodClients{
		"connect-proto": mk(), // Connect's default codec is binary protobuf
		"connect-json":  mk(connect.WithProtoJSON()),
		"grpc":          mk(connect.WithGRPC()),
	}
}

// person is a user with a PAT of the given scopes.
type person struct {
	storage.Principal
	secret string
}

func (e *env) newPerson(t *testing.T, orgID, name string, scopes ...string) person {
	t.Helper()
	p, err := CreatePrincipal(t.Context(), e.store, testCaller, orgID, storage.PrincipalUser, name, name+"@example.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return person{p, e.mintPAT(p.ID, scopes...)}
}

// listAll follows next_token to the end, at most maxPages pages.
func listAll(t *testing.T, c gitpodv1connect.UserServiceClient, secret string, pageSize int32, owner string) (ids []string, pages int) {
	t.Helper()
	tok := ""
	for pages = 1; pages <= 50; pages++ {
		req := &gitpodv1.ListPersonalAccessTokensRequest{Pagination: &gitpodv1.PaginationRequest{PageSize: pageSize, Token: tok}}
		if owner != "" {
			req.Filter = &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{owner}}
		}
		res, err := c.ListPersonalAccessTokens(as(secret), req)
		if err != nil {
			t.Fatalf("ListPersonalAccessTokens page %d: %v", pages, err)
		}
		if int32(len(res.GetPersonalAccessTokens())) > pageSize {
			t.Fatalf("page %d has %d tokens, page size %d", pages, len(res.GetPersonalAccessTokens()), pageSize)
		}
		for _, p := range res.GetPersonalAccessTokens() {
			ids = append(ids, p.GetId())
		}
		if tok = res.GetPagination().GetNextToken(); tok == "" {
			return ids, pages
		}
	}
	t.Fatal("pagination did not end within 50 pages")
	return nil, 0
}

// TestGitpodClients is the judge of wire fidelity: Gitpod-shaped clients
// (our generated gitpodv1connect clients) call every IdentityService and
// UserService RPC over Connect+proto, Connect+JSON and gRPC on h2c, and
// follow PAT list pagination to the end over several pages.
func TestGitpodClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	other, err := CreateOrganization(t.Context(), e.store, testCaller, "other", "free", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range e.gitpodProtocols(t) {
		t.Run(name, func(t *testing.T) {
			admin := e.newPerson(t, e.org.ID, "adm-"+name, pat.ScopeFull, pat.ScopeAdmin)
			alice := e.newPerson(t, e.org.ID, "alice-"+name, pat.ScopeFull)
			bob := e.newPerson(t, e.org.ID, "bob-"+name, pat.ScopeFull)
			outsider := e.newPerson(t, other.ID, "out-"+name, pat.ScopeFull, pat.ScopeAdmin)

			// IdentityService.
			id, err := c.identity.GetAuthenticatedIdentity(as(alice.secret), &gitpodv1.GetAuthenticatedIdentityRequest{})
			if err != nil || id.GetSubject().GetId() != alice.ID || id.GetSubject().GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER ||
				id.GetOrganizationId() != e.org.ID || id.GetOrganizationTier() != "enterprise" {
				t.Fatalf("GetAuthenticatedIdentity = %v, %v", id, err)
			}
			v2, err := c.identity.GetIDToken(as(alice.secret), &gitpodv1.GetIDTokenRequest{Audience: []string{"https://aws"}, Version: gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V2})
			if err != nil {
				t.Fatalf("GetIDToken: %v", err)
			}
			if sub := claimsOf(t, v2.GetToken())["sub"]; sub != "org:"+e.org.ID+"/user:"+alice.ID {
				t.Errorf("V2 sub = %v", sub)
			}
			v1, err := c.identity.GetIDToken(as(alice.secret), &gitpodv1.GetIDTokenRequest{Audience: []string{"https://aws"}})
			if err != nil || claimsOf(t, v1.GetToken())["sub"] != alice.ID {
				t.Errorf("V1 = %v, %v", v1, err)
			}
			_, x, _ := e.pats.CreateExchangeToken(t.Context(), testCaller, bob.ID, 0, pat.ExchangeSource{})
			at, err := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x})
			if err != nil || at.GetAccessToken() == "" {
				t.Fatalf("ExchangeToken = %v, %v", at, err)
			}

			// GetAuthenticatedUser, GetUser.
			u, err := c.user.GetAuthenticatedUser(as(alice.secret), &gitpodv1.GetAuthenticatedUserRequest{})
			if err != nil || u.GetUser().GetId() != alice.ID || u.GetUser().GetEmail() != alice.Email || u.GetUser().GetName() != alice.Name ||
				u.GetUser().GetOrganizationId() != e.org.ID || u.GetUser().GetStatus() != gitpodv1.UserStatus_USER_STATUS_ACTIVE || u.GetUser().GetCreatedAt() == nil {
				t.Fatalf("GetAuthenticatedUser = %v, %v", u, err)
			}
			if g, err := c.user.GetUser(as(alice.secret), &gitpodv1.GetUserRequest{}); err != nil || g.GetUser().GetId() != alice.ID {
				t.Errorf("GetUser self = %v, %v", g, err)
			}
			if g, err := c.user.GetUser(as(admin.secret), &gitpodv1.GetUserRequest{UserId: alice.ID}); err != nil || g.GetUser().GetId() != alice.ID {
				t.Errorf("GetUser by admin = %v, %v", g, err)
			}
			_, err = c.user.GetUser(as(alice.secret), &gitpodv1.GetUserRequest{UserId: bob.ID})
			wantCode(t, "GetUser of another user by a non-admin", err, connect.CodePermissionDenied)
			_, err = c.user.GetUser(as(outsider.secret), &gitpodv1.GetUserRequest{UserId: alice.ID})
			wantCode(t, "GetUser across organizations", err, connect.CodeNotFound)

			// CreatePersonalAccessToken in Gitpod's shape: read_only.
			ro, err := c.user.CreatePersonalAccessToken(as(alice.secret), &gitpodv1.CreatePersonalAccessTokenRequest{
				Description: "ci", ValidFor: durationpb.New(48 * time.Hour), ReadOnly: true,
			})
			if err != nil || ro.GetToken() == "" || !ro.GetPersonalAccessToken().GetReadOnly() ||
				!slices.Equal(ro.GetPersonalAccessToken().GetScopes(), []string{pat.ScopeIdentityRead, pat.ScopeTokensRead}) {
				t.Fatalf("Create read-only = %v, %v", ro, err)
			}
			if _, err := c.identity.GetAuthenticatedIdentity(as(ro.GetToken()), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
				t.Errorf("read-only token reads identity: %v", err)
			}
			_, err = c.user.CreatePersonalAccessToken(as(ro.GetToken()), &gitpodv1.CreatePersonalAccessTokenRequest{ValidFor: durationpb.New(48 * time.Hour), ReadOnly: true})
			wantCode(t, "read-only token creates a token", err, connect.CodePermissionDenied)
			_, err = c.identity.GetIDToken(as(ro.GetToken()), &gitpodv1.GetIDTokenRequest{Audience: []string{"a"}})
			wantCode(t, "read-only token mints an ID token", err, connect.CodePermissionDenied)
			rw, err := c.user.CreatePersonalAccessToken(as(alice.secret), &gitpodv1.CreatePersonalAccessTokenRequest{ValidFor: durationpb.New(48 * time.Hour)})
			if err != nil || rw.GetPersonalAccessToken().GetReadOnly() || !slices.Equal(rw.GetPersonalAccessToken().GetScopes(), []string{pat.ScopeFull}) {
				t.Fatalf("Create full = %v, %v", rw, err)
			}
			_, err = c.user.CreatePersonalAccessToken(as(alice.secret), &gitpodv1.CreatePersonalAccessTokenRequest{ValidFor: durationpb.New(48 * time.Hour), ReadOnly: true, Scopes: []string{pat.ScopeTokensWrite}})
			wantCode(t, "read_only with a write scope", err, connect.CodeInvalidArgument)
			// user_id: own, or an administered user only.
			_, err = c.user.CreatePersonalAccessToken(as(alice.secret), &gitpodv1.CreatePersonalAccessTokenRequest{UserId: bob.ID, ValidFor: durationpb.New(48 * time.Hour)})
			wantCode(t, "create for another user by a non-admin", err, connect.CodePermissionDenied)
			_, err = c.user.CreatePersonalAccessToken(as(outsider.secret), &gitpodv1.CreatePersonalAccessTokenRequest{UserId: bob.ID, ValidFor: durationpb.New(48 * time.Hour)})
			wantCode(t, "create across organizations", err, connect.CodeNotFound)
			for i := range 4 {
				cr, err := c.user.CreatePersonalAccessToken(as(admin.secret), &gitpodv1.CreatePersonalAccessTokenRequest{
					UserId: bob.ID, Description: "by admin", ValidFor: durationpb.New(48 * time.Hour), ReadOnly: i%2 == 0,
				})
				if err != nil || cr.GetPersonalAccessToken().GetUserId() != bob.ID {
					t.Fatalf("Create for bob by admin = %v, %v", cr, err)
				}
			}

			// List, followed to the end over several pages.
			ids, pages := listAll(t, c.user, alice.secret, 1, "")
			if len(ids) != 3 || pages != 3 {
				t.Errorf("alice: %d tokens in %d pages, want 3 in 3", len(ids), pages)
			}
			ids, pages = listAll(t, c.user, admin.secret, 2, bob.ID)
			if len(ids) != 5 || pages != 3 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 5 {
				t.Errorf("bob via admin: %v in %d pages, want 5 distinct in 3", ids, pages)
			}
			_, err = c.user.ListPersonalAccessTokens(as(alice.secret), &gitpodv1.ListPersonalAccessTokensRequest{Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{bob.ID}}})
			wantCode(t, "list another user's tokens", err, connect.CodePermissionDenied)
			g, err := c.user.GetPersonalAccessToken(as(alice.secret), &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: ro.GetPersonalAccessToken().GetId()})
			if err != nil || !g.GetPat().GetReadOnly() || g.GetPat().GetDescription() != "ci" || g.GetPat().GetCreator().GetId() != alice.ID {
				t.Errorf("GetPersonalAccessToken = %v, %v", g, err)
			}
			// sts's own: update (readOnly follows the scopes) and regenerate.
			up, err := c.user.UpdatePersonalAccessToken(as(alice.secret), &gitpodv1.UpdatePersonalAccessTokenRequest{
				PersonalAccessTokenId: rw.GetPersonalAccessToken().GetId(), Description: new("narrowed"),
				Scopes: &gitpodv1.ScopeList{Scopes: []string{pat.ScopeTokensRead}},
			})
			if err != nil || !up.GetPersonalAccessToken().GetReadOnly() || up.GetPersonalAccessToken().GetDescription() != "narrowed" {
				t.Errorf("UpdatePersonalAccessToken = %v, %v", up, err)
			}
			rg, err := c.user.RegeneratePersonalAccessToken(as(alice.secret), &gitpodv1.RegeneratePersonalAccessTokenRequest{
				PersonalAccessTokenId: rw.GetPersonalAccessToken().GetId(), ValidFor: durationpb.New(72 * time.Hour),
			})
			if err != nil || rg.GetToken() == "" || rg.GetToken() == rw.GetToken() || rg.GetPersonalAccessToken().GetId() != rw.GetPersonalAccessToken().GetId() {
				t.Errorf("RegeneratePersonalAccessToken = %v, %v", rg, err)
			}
			if _, err := c.user.DeletePersonalAccessToken(as(alice.secret), &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: rw.GetPersonalAccessToken().GetId()}); err != nil {
				t.Errorf("DeletePersonalAccessToken: %v", err)
			}
			_, err = c.user.GetAuthenticatedUser(as(rg.GetToken()), &gitpodv1.GetAuthenticatedUserRequest{})
			wantCode(t, "deleted token", err, connect.CodeUnauthenticated)

			// SetSuspended: the user's PAT and its derived access token stop.
			_, err = c.user.SetSuspended(as(alice.secret), &gitpodv1.SetSuspendedRequest{UserId: bob.ID, Suspended: true})
			wantCode(t, "suspend by a non-admin", err, connect.CodePermissionDenied)
			_, err = c.user.SetSuspended(as(outsider.secret), &gitpodv1.SetSuspendedRequest{UserId: bob.ID, Suspended: true})
			wantCode(t, "suspend across organizations", err, connect.CodeNotFound)
			_, err = c.user.SetSuspended(as(admin.secret), &gitpodv1.SetSuspendedRequest{UserId: admin.ID, Suspended: true})
			wantCode(t, "suspend yourself", err, connect.CodeInvalidArgument)
			if _, err := c.user.SetSuspended(as(admin.secret), &gitpodv1.SetSuspendedRequest{UserId: bob.ID, Suspended: true}); err != nil {
				t.Fatalf("SetSuspended: %v", err)
			}
			_, err = c.user.GetAuthenticatedUser(as(bob.secret), &gitpodv1.GetAuthenticatedUserRequest{})
			wantCode(t, "suspended user's PAT", err, connect.CodeUnauthenticated)
			_, err = c.identity.GetAuthenticatedIdentity(as(at.GetAccessToken()), &gitpodv1.GetAuthenticatedIdentityRequest{})
			wantCode(t, "suspended user's access token", err, connect.CodeUnauthenticated)
			if g, err := c.user.GetUser(as(admin.secret), &gitpodv1.GetUserRequest{UserId: bob.ID}); err != nil || g.GetUser().GetStatus() != gitpodv1.UserStatus_USER_STATUS_SUSPENDED {
				t.Errorf("GetUser suspended = %v, %v", g, err)
			}
			if _, err := c.user.SetSuspended(as(admin.secret), &gitpodv1.SetSuspendedRequest{UserId: bob.ID}); err != nil {
				t.Fatalf("SetSuspended false: %v", err)
			}
			if _, err := c.user.GetAuthenticatedUser(as(bob.secret), &gitpodv1.GetAuthenticatedUserRequest{}); err != nil {
				t.Errorf("reactivated user's PAT: %v", err)
			}

			// DeleteUser.
			_, err = c.user.DeleteUser(as(outsider.secret), &gitpodv1.DeleteUserRequest{UserId: bob.ID})
			wantCode(t, "delete across organizations", err, connect.CodeNotFound)
			_, err = c.user.DeleteUser(as(admin.secret), &gitpodv1.DeleteUserRequest{UserId: admin.ID})
			wantCode(t, "delete yourself", err, connect.CodeInvalidArgument)
			if _, err := c.user.DeleteUser(as(admin.secret), &gitpodv1.DeleteUserRequest{UserId: bob.ID}); err != nil {
				t.Fatalf("DeleteUser: %v", err)
			}
			_, err = c.user.GetAuthenticatedUser(as(bob.secret), &gitpodv1.GetAuthenticatedUserRequest{})
			wantCode(t, "deleted user's PAT", err, connect.CodeUnauthenticated)
			_, err = c.user.GetUser(as(admin.secret), &gitpodv1.GetUserRequest{UserId: bob.ID})
			wantCode(t, "deleted user", err, connect.CodeNotFound)
			if left, _ := e.store.ListPATs(t.Context(), bob.ID); len(left) != 0 {
				t.Errorf("deleted user still has %d PATs", len(left))
			}

			// Out of scope on purpose.
			for what, call := range map[string]func() error{
				"SetPreference": func() error {
					_, err := c.user.SetPreference(as(alice.secret), &gitpodv1.SetPreferenceRequest{Key: "k", Value: "v"})
					return err
				},
				"GetPreference": func() error {
					_, err := c.user.GetPreference(as(alice.secret), &gitpodv1.GetPreferenceRequest{})
					return err
				},
				"ListPreferences": func() error {
					_, err := c.user.ListPreferences(as(alice.secret), &gitpodv1.ListPreferencesRequest{})
					return err
				},
				"DeletePreference": func() error {
					_, err := c.user.DeletePreference(as(alice.secret), &gitpodv1.DeletePreferenceRequest{})
					return err
				},
				"GetDotfilesConfiguration": func() error {
					_, err := c.user.GetDotfilesConfiguration(as(alice.secret), &gitpodv1.GetDotfilesConfigurationRequest{})
					return err
				},
				"SetDotfilesConfiguration": func() error {
					_, err := c.user.SetDotfilesConfiguration(as(alice.secret), &gitpodv1.SetDotfilesConfigurationRequest{Repository: "r"})
					return err
				},
			} {
				err := call()
				wantCode(t, what, err, connect.CodeUnimplemented)
				if err != nil && !strings.Contains(err.Error(), "not stored by sts") {
					t.Errorf("%s: message %q", what, err)
				}
			}
		})
	}
}

// TestGitpodGRPCGoPagination follows PAT list pagination to the end with
// grpc-go itself over h2c, the reference gRPC implementation.
func TestGitpodGRPCGoPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for range 4 {
		e.mintPAT(e.user.ID, pat.ScopeIdentityRead)
	}
	url, _ := e.h2c(t)
	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.secret)
	var seen []string
	tok, pages := "", 0
	for pages = 1; pages <= 20; pages++ {
		res := &gitpodv1.ListPersonalAccessTokensResponse{}
		req := &gitpodv1.ListPersonalAccessTokensRequest{Pagination: &gitpodv1.PaginationRequest{PageSize: 2, Token: tok}}
		if err := conn.Invoke(ctx, gitpodv1connect.UserServiceListPersonalAccessTokensProcedure, req, res); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, p := range res.GetPersonalAccessTokens() {
			seen = append(seen, p.GetId())
		}
		if tok = res.GetPagination().GetNextToken(); tok == "" {
			break
		}
	}
	if len(seen) != 5 || pages != 3 { // e.secret and four more
		t.Errorf("%d tokens in %d pages, want 5 in 3", len(seen), pages)
	}
	id := &gitpodv1.GetAuthenticatedIdentityResponse{}
	if err := conn.Invoke(ctx, gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure, &gitpodv1.GetAuthenticatedIdentityRequest{}, id); err != nil || id.GetSubject().GetId() != e.user.ID {
		t.Errorf("GetAuthenticatedIdentity = %v, %v", id, err)
	}
	err = conn.Invoke(ctx, gitpodv1connect.UserServiceSetPreferenceProcedure, &gitpodv1.SetPreferenceRequest{}, &gitpodv1.SetPreferenceResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("SetPreference: %v", err)
	}
}
