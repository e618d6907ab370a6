package api

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/tokens"
)

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
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

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// TestIdentityService runs every IdentityService RPC with generated Connect
// clients over Connect, Connect JSON (under /api), gRPC and gRPC-Web.
func TestIdentityService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for name, c := range e.protocols() {
		t.Run(name, func(t *testing.T) {
			res, err := c.identity.GetAuthenticatedIdentity(as(e.secret), &gitpodv1.GetAuthenticatedIdentityRequest{})
			if err != nil {
				t.Fatalf("GetAuthenticatedIdentity: %v", err)
			}
			if res.GetOrganizationId() != e.org.ID || res.GetOrganizationTier() != "enterprise" ||
				res.GetSubject().GetId() != e.user.ID || res.GetSubject().GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER {
				t.Errorf("GetAuthenticatedIdentity = %v", res)
			}
			_, err = c.identity.GetAuthenticatedIdentity(as(""), &gitpodv1.GetAuthenticatedIdentityRequest{})
			wantCode(t, "no credential", err, connect.CodeUnauthenticated)

			aud := []string{"https://api.gitpod.io", "https://ws.gitpod.io"}
			v1, err := c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: aud})
			if err != nil {
				t.Fatalf("GetIDToken v1: %v", err)
			}
			cl := claimsOf(t, v1.GetToken())
			if cl["sub"] != e.user.ID || cl["iss"] != testIssuer || cl["org_id"] != nil {
				t.Errorf("v1 claims = %v", cl)
			}
			if got, _ := json.Marshal(cl["aud"]); string(got) != `["https://api.gitpod.io","https://ws.gitpod.io"]` {
				t.Errorf("v1 aud = %s, want exactly the request list", got)
			}
			v2, err := c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: aud[:1], Version: gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V2})
			if err != nil {
				t.Fatalf("GetIDToken v2: %v", err)
			}
			cl = claimsOf(t, v2.GetToken())
			if cl["sub"] != tokens.SubjectV2(e.org.ID, "user", e.user.ID) || cl["org_id"] != e.org.ID ||
				cl["email"] != "ada@example.com" || cl["name"] != "ada" || cl["aud"] != aud[0] {
				t.Errorf("v2 claims = %v", cl)
			}
			_, err = c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{})
			wantCode(t, "no audience", err, connect.CodeInvalidArgument)

			x, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{PrincipalId: e.user.ID, ValidFor: durationpb.New(time.Minute)})
			if err != nil {
				t.Fatalf("CreateExchangeToken: %v", err)
			}
			_, err = c.principal.CreateExchangeToken(as(e.secret), &stsv1.CreateExchangeTokenRequest{PrincipalId: e.user.ID})
			wantCode(t, "exchange token without admin", err, connect.CodePermissionDenied)
			at, err := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
			if err != nil {
				t.Fatalf("ExchangeToken: %v", err)
			}
			_, err = c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
			wantCode(t, "exchange token reuse", err, connect.CodeUnauthenticated)
			_, err = c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{})
			wantCode(t, "empty exchange token", err, connect.CodeInvalidArgument)
			// The access token authenticates the API in turn.
			res, err = c.identity.GetAuthenticatedIdentity(as(at.GetAccessToken()), &gitpodv1.GetAuthenticatedIdentityRequest{})
			if err != nil || res.GetSubject().GetId() != e.user.ID || res.GetOrganizationTier() != "enterprise" {
				t.Errorf("GetAuthenticatedIdentity with access token = %v, %v", res, err)
			}
		})
	}
}

// TestUserService runs the authenticated-user and PAT lifecycle RPCs with
// every protocol; gitpod.v1.UserService behaviour: update keeps the secret, regenerate
// kills the old one, delete kills the token.
func TestUserService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for name, c := range e.protocols() {
		t.Run(name, func(t *testing.T) {
			u, err := c.user.GetAuthenticatedUser(as(e.secret), &gitpodv1.GetAuthenticatedUserRequest{})
			if err != nil || u.GetUser().GetId() != e.user.ID || u.GetUser().GetStatus() != gitpodv1.UserStatus_USER_STATUS_ACTIVE {
				t.Fatalf("GetAuthenticatedUser = %v, %v", u, err)
			}
			cr, err := c.user.CreatePersonalAccessToken(as(e.secret), &gitpodv1.CreatePersonalAccessTokenRequest{
				Description: "laptop", ValidFor: durationpb.New(7 * 24 * time.Hour), Scopes: []string{pat.ScopeIdentityRead},
			})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			id, secret := cr.GetPersonalAccessToken().GetId(), cr.GetToken()
			if pat.PrefixPAT.Parse(secret) != nil || cr.GetPersonalAccessToken().GetUserId() != e.user.ID {
				t.Fatalf("Create = %v", cr)
			}
			_, err = c.user.CreatePersonalAccessToken(as(e.secret), &gitpodv1.CreatePersonalAccessTokenRequest{Description: "x"})
			wantCode(t, "create without expiry", err, connect.CodeInvalidArgument)
			_, err = c.user.CreatePersonalAccessToken(as(e.secret), &gitpodv1.CreatePersonalAccessTokenRequest{ValidFor: durationpb.New(24 * time.Hour), Scopes: []string{pat.ScopeAdmin}})
			wantCode(t, "create with a scope the caller lacks", err, connect.CodePermissionDenied)
			// The new token reads identity but cannot manage tokens.
			if _, err := c.identity.GetAuthenticatedIdentity(as(secret), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
				t.Errorf("new token: %v", err)
			}
			_, err = c.user.ListPersonalAccessTokens(as(secret), &gitpodv1.ListPersonalAccessTokensRequest{})
			wantCode(t, "list with identity:read only", err, connect.CodePermissionDenied)

			l, err := c.user.ListPersonalAccessTokens(as(e.secret), &gitpodv1.ListPersonalAccessTokensRequest{Pagination: &gitpodv1.PaginationRequest{PageSize: 1}})
			if err != nil || len(l.GetPersonalAccessTokens()) != 1 || l.GetPagination().GetNextToken() == "" {
				t.Fatalf("List page 1 = %v, %v", l, err)
			}
			g, err := c.user.GetPersonalAccessToken(as(e.secret), &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: id})
			if err != nil || g.GetPat().GetDescription() != "laptop" || g.GetPat().GetExpiresAt() == nil {
				t.Fatalf("Get = %v, %v", g, err)
			}
			_, err = c.user.GetPersonalAccessToken(as(e.admin), &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: id})
			wantCode(t, "get another user's token", err, connect.CodeNotFound)

			desc := "desktop"
			up, err := c.user.UpdatePersonalAccessToken(as(e.secret), &gitpodv1.UpdatePersonalAccessTokenRequest{
				PersonalAccessTokenId: id, Description: &desc, Scopes: &gitpodv1.ScopeList{Scopes: []string{}},
			})
			if err != nil || up.GetPersonalAccessToken().GetDescription() != desc || len(up.GetPersonalAccessToken().GetScopes()) != 0 {
				t.Fatalf("Update = %v, %v", up, err)
			}
			_, err = c.identity.GetAuthenticatedIdentity(as(secret), &gitpodv1.GetAuthenticatedIdentityRequest{})
			wantCode(t, "no-access token after update", err, connect.CodePermissionDenied)

			rg, err := c.user.RegeneratePersonalAccessToken(as(e.secret), &gitpodv1.RegeneratePersonalAccessTokenRequest{
				PersonalAccessTokenId: id, ValidFor: durationpb.New(2 * 24 * time.Hour),
			})
			if err != nil || rg.GetToken() == secret {
				t.Fatalf("Regenerate = %v, %v", rg, err)
			}
			_, err = c.user.GetAuthenticatedUser(as(secret), &gitpodv1.GetAuthenticatedUserRequest{})
			wantCode(t, "old secret after regenerate", err, connect.CodeUnauthenticated)
			_, err = c.user.GetAuthenticatedUser(as(rg.GetToken()), &gitpodv1.GetAuthenticatedUserRequest{})
			wantCode(t, "new secret (no access)", err, connect.CodePermissionDenied)

			if _, err := c.user.DeletePersonalAccessToken(as(e.secret), &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: id}); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			_, err = c.user.GetAuthenticatedUser(as(rg.GetToken()), &gitpodv1.GetAuthenticatedUserRequest{})
			wantCode(t, "after delete", err, connect.CodeUnauthenticated)
			_, err = c.user.DeletePersonalAccessToken(as(e.secret), &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: id})
			wantCode(t, "delete twice", err, connect.CodeNotFound)
		})
	}
}

func TestAdminServices(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for name, c := range e.protocols() {
		t.Run(name, func(t *testing.T) {
			o, err := c.org.CreateOrganization(as(e.admin), &stsv1.CreateOrganizationRequest{Name: "beta-" + name})
			if err != nil || o.GetOrganization().GetTier() != DefaultTier {
				t.Fatalf("CreateOrganization = %v, %v", o, err)
			}
			_, err = c.org.CreateOrganization(as(e.secret), &stsv1.CreateOrganizationRequest{Name: "x"})
			wantCode(t, "create org without admin", err, connect.CodePermissionDenied)
			orgID := o.GetOrganization().GetId()
			p, err := c.principal.CreatePrincipal(as(e.admin), &stsv1.CreatePrincipalRequest{OrganizationId: orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER, Name: "r1"})
			if err != nil {
				t.Fatalf("CreatePrincipal: %v", err)
			}
			_, err = c.principal.CreatePrincipal(as(e.admin), &stsv1.CreatePrincipalRequest{OrganizationId: "nope", Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "u"})
			wantCode(t, "principal in unknown org", err, connect.CodeNotFound)
			l, err := c.principal.ListPrincipals(as(e.admin), &stsv1.ListPrincipalsRequest{OrganizationId: orgID})
			if err != nil || len(l.GetPrincipals()) != 1 || l.GetPrincipals()[0].GetId() != p.GetPrincipal().GetId() {
				t.Fatalf("ListPrincipals = %v, %v", l, err)
			}
			d, err := c.principal.SetPrincipalDisabled(as(e.admin), &stsv1.SetPrincipalDisabledRequest{PrincipalId: p.GetPrincipal().GetId(), Disabled: true})
			if err != nil || !d.GetPrincipal().GetDisabled() {
				t.Fatalf("SetPrincipalDisabled = %v, %v", d, err)
			}
			ol, err := c.org.ListOrganizations(as(e.admin), &stsv1.ListOrganizationsRequest{})
			if err != nil || !slices.ContainsFunc(ol.GetOrganizations(), func(x *stsv1.Organization) bool { return x.GetId() == orgID }) {
				t.Fatalf("ListOrganizations = %v, %v", ol, err)
			}
		})
	}
}
