package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/audit"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// The authorization matrix of docs/authorization.md, as one table: every
// procedure of the gitpod.v1 and sts.v1 services has one row naming its
// rule and how to build a request; the rule decides, for every kind of
// credential, the outcome. TestAuthorizationMatrix walks every cell
// against a real server (HTTP/2 TLS on loopback, real storage) and fails
// when a procedure in the generated descriptors has no row.

// outcome is a Connect code name, or "ok".
type outcome string

const (
	allowed   outcome = "ok"
	unauthn   outcome = "unauthenticated"
	denied    outcome = "permission_denied"
	notFound  outcome = "not_found"
	scopeRead         = pat.ScopeTokensRead
)

// cred is one column of the matrix: a credential and what it stands for.
type cred struct {
	name      string
	token     string
	principal string   // owner; "" without a principal
	scopes    []string // what it holds
	pat       bool     // a PAT (not an access token)
	org       string   // "acme", "evil" or "" (no organization)
	role      string   // "user", "runner", "sa", "orgadmin", "instance"
	// fromPAT: an access token exchanged from a PAT (pat_id) that
	// expires after the two days the matrix's PATs are asked for.
	fromPAT bool
	// bounded: an access token with a Credential Access Boundary (cab),
	// refused everywhere on the API (docs/security.md A-53).
	bounded bool
}

func (c cred) holds(s string) bool { return pat.Allows(c.scopes, s) }

// rule maps a credential to the outcome of one procedure.
type rule func(c cred) outcome

func authenticated(c cred) bool { return c.token != "" && c.org != "" }

// public: no credential needed (the request carries its own).
func public(cred) outcome { return allowed }

// scoped: the caller acts on its own records with scope s.
func scoped(s string) rule {
	return func(c cred) outcome {
		switch {
		case !authenticated(c):
			return unauthn
		case c.bounded:
			return denied
		case !c.holds(s):
			return denied
		}
		return allowed
	}
}

// mintPAT: tokens:write from a PAT (or an administrator); see mayMintPAT.
// An administrator's access token mints only within what it was drawn
// from (docs/security.md T-193): the two-day PAT the requests ask for is
// within the 30-day PAT of the one exchanged from a PAT, beyond the 15
// minutes of one drawn from no PAT (client_credentials).
func mintPAT(c cred) outcome {
	if o := scoped(pat.ScopeTokensWrite)(c); o != allowed {
		return o
	}
	if !c.pat && !(c.fromPAT && c.holds(pat.ScopeAdmin)) {
		return denied
	}
	return allowed
}

// orgAdmin: sts:admin on a record of acme: acme's administrators and
// instance administrators; other organizations' read it as missing.
func orgAdmin(c cred) outcome {
	if o := scoped(pat.ScopeAdmin)(c); o != allowed {
		return o
	}
	if c.org != "acme" && c.role != "instance" {
		return notFound
	}
	return allowed
}

// userAdmin: a gitpod.v1 call on another user (ada's colleague): scope s
// and sts:admin over that user's organization, by the same rule as
// orgAdmin: acme's administrators and instance administrators; other
// organizations' administrators read acme's users as missing.
func userAdmin(s string) rule {
	return func(c cred) outcome {
		if o := scoped(s)(c); o != allowed {
			return o
		}
		if !c.holds(pat.ScopeAdmin) {
			return denied
		}
		if c.org != "acme" && c.role != "instance" {
			return notFound
		}
		return allowed
	}
}

// notStored: sts keeps no user preferences or dotfiles; any credential
// gets unimplemented.
func notStored(c cred) outcome {
	if !authenticated(c) {
		return unauthn
	}
	if c.bounded {
		return denied
	}
	return "unimplemented"
}

// anyAdmin: sts:admin; the answer is limited to what the caller may see.
func anyAdmin(c cred) outcome { return scoped(pat.ScopeAdmin)(c) }

// instanceAdmin: only an instance administrator.
func instanceAdmin(c cred) outcome {
	if o := scoped(pat.ScopeAdmin)(c); o != allowed {
		return o
	}
	if c.role != "instance" {
		return denied
	}
	return allowed
}

// vault: a host token of acme whose subject is ada and runner is the
// runner: its subject, its runner and acme's administrators; anyone else,
// other organizations' administrators included, reads it as missing.
func vault(s string) rule {
	return func(c cred) outcome {
		if o := scoped(s)(c); o != allowed {
			return o
		}
		if c.org == "acme" && (c.role == "user" || c.role == "runner" || c.role == "orgadmin") {
			return allowed
		}
		return notFound
	}
}

// vaultCreate: as vault, but a principal of acme that is neither subject,
// runner nor administrator is refused outright, and so is the runner: the
// subject is a user, and only that user or an administrator may store a
// token for a user.
func vaultCreate(c cred) outcome {
	o := vault(pat.ScopeTokensWrite)(c)
	if (o == notFound || c.role == "runner") && c.org == "acme" {
		return denied
	}
	return o
}

// vaultRunner: a change only the host token's runner (naming itself) and
// acme's administrators may make; the subject, other principals and other
// organizations read the token as missing.
func vaultRunner(c cred) outcome {
	if o := scoped(pat.ScopeTokensWrite)(c); o != allowed {
		return o
	}
	if c.org == "acme" && (c.role == "runner" || c.role == "orgadmin") {
		return allowed
	}
	return notFound
}

// runnerSelf: only the runner itself reads a host-token value (sealed to
// its key); users and administrators of any organization are refused.
func runnerSelf(c cred) outcome {
	if o := scoped(scopeRead)(c); o != allowed {
		return o
	}
	if c.org == "acme" && c.role == "runner" {
		return allowed
	}
	return denied
}

// sameOrgAdmin: sts:admin in the record's own organization only; other
// organizations' administrators, instance administrators included, read
// it as missing (runner keys decide who can read vault values).
func sameOrgAdmin(c cred) outcome {
	if o := scoped(pat.ScopeAdmin)(c); o != allowed {
		return o
	}
	if c.org != "acme" {
		return notFound
	}
	return allowed
}

// matrixFx is the fixture: built once per database.
type matrixFx struct {
	t         *testing.T
	e         *env
	acme      storage.Organization
	evil      storage.Organization
	ada       storage.Principal // acme user, subject of the host token
	victim    storage.Principal // acme user the admin calls act on
	runner    storage.Principal
	sa        storage.Principal
	client    string // acme client
	hostTok   string // acme host token (ada, runner)
	runnerKey []byte // the runner's registered X25519 public key
	root      string // PAT of the instance admin, for fixture changes
}

// row is one procedure of the matrix.
type row struct {
	rule  rule
	build func(fx *matrixFx, c cred) proto.Message
}

func (fx *matrixFx) newPool() string {
	id := "p-" + strings.ToLower(rand.Text()[:10])
	fx.must("/sts.v1.PoolService/CreatePool", &stsv1.CreatePoolRequest{PoolId: id, OrganizationId: fx.acme.ID,
		Mapping: &stsv1.PoolMapping{Subject: "assertion.sub"}})
	return id
}

func (fx *matrixFx) newProvider(pool string) string {
	id := "v-" + strings.ToLower(rand.Text()[:10])
	fx.must("/sts.v1.PoolService/CreateProvider", &stsv1.CreateProviderRequest{PoolId: pool, ProviderId: id,
		Issuer: "https://" + id + ".example", Audiences: []string{"sts"}, JwksUri: "https://" + id + ".example/jwks"})
	return id
}

// nextKey is the kid of the stored next signing key.
func (fx *matrixFx) nextKey() string {
	rows, err := fx.e.store.ListSigningKeys(context.Background())
	if err != nil {
		fx.t.Fatal(err)
	}
	for _, k := range rows {
		if k.State == storage.KeyNext {
			return k.ID
		}
	}
	fx.t.Fatal("no next signing key")
	return ""
}

// newOrg is a new empty organization (deletable).
func (fx *matrixFx) newOrg() string {
	o, err := CreateOrganization(context.Background(), fx.e.store.(AdminStore), testCaller, "o-"+rand.Text()[:8], "", time.Now())
	if err != nil {
		fx.t.Fatal(err)
	}
	return o.ID
}

// newPrincipal is a new acme user (deletable).
func (fx *matrixFx) newPrincipal() string {
	p, err := CreatePrincipal(context.Background(), fx.e.store.(AdminStore), testCaller, fx.acme.ID, storage.PrincipalUser, "u-"+rand.Text()[:8], "", time.Now())
	if err != nil {
		fx.t.Fatal(err)
	}
	return p.ID
}

func (fx *matrixFx) newClient() string {
	var res stsv1.CreateClientResponse
	fx.mustInto("/sts.v1.ClientService/CreateClient", &stsv1.CreateClientRequest{OrganizationId: fx.acme.ID, PrincipalId: fx.sa.ID,
		GrantTypes: []string{oauth2.GrantTypeClientCredentials}}, &res)
	return res.GetClient().GetId()
}

func (fx *matrixFx) newHostToken() string {
	var res gitpodv1.CreateHostAuthenticationTokenResponse
	fx.mustInto("/gitpod.v1.RunnerConfigurationService/CreateHostAuthenticationToken", &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: fx.runner.ID, Subject: &gitpodv1.Subject{Id: fx.ada.ID}, Host: "github.com", Token: "ghp_matrix",
		Source: gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT}, &res)
	return res.GetToken().GetId()
}

// ownPAT is a new PAT without scopes owned by c's principal (anyone may
// act on it: it holds nothing c lacks).
func (fx *matrixFx) ownPAT(c cred) string {
	if c.principal == "" {
		return storage.NewID()
	}
	p, _, err := fx.e.pats.Create(context.Background(), testCaller, pat.CreateInput{
		OwnerID: c.principal, ExpiresAt: time.Now().Add(3 * 24 * time.Hour)})
	if err != nil {
		fx.t.Fatal(err)
	}
	return p.ID
}

func (fx *matrixFx) exchangeToken(principal string) string {
	_, s, err := fx.e.pats.CreateExchangeToken(context.Background(), testCaller, principal, 0, pat.ExchangeSource{})
	if err != nil {
		fx.t.Fatal(err)
	}
	return s
}

var twoDays = durationpb.New(2 * 24 * time.Hour)

// matrix is THE table: one row per procedure.
var matrix = map[string]row{
	// gitpod.v1.IdentityService
	"/gitpod.v1.IdentityService/GetAuthenticatedIdentity": {scoped(pat.ScopeIdentityRead), func(*matrixFx, cred) proto.Message {
		return &gitpodv1.GetAuthenticatedIdentityRequest{}
	}},
	"/gitpod.v1.IdentityService/GetIDToken": {scoped(pat.ScopeIDToken), func(*matrixFx, cred) proto.Message {
		return &gitpodv1.GetIDTokenRequest{Audience: []string{"https://api.example"}}
	}},
	"/gitpod.v1.IdentityService/ExchangeToken": {public, func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.ExchangeTokenRequest{ExchangeToken: fx.exchangeToken(fx.ada.ID)}
	}},
	// gitpod.v1.UserService
	"/gitpod.v1.UserService/GetAuthenticatedUser": {scoped(pat.ScopeIdentityRead), func(*matrixFx, cred) proto.Message {
		return &gitpodv1.GetAuthenticatedUserRequest{}
	}},
	"/gitpod.v1.UserService/GetUser": {userAdmin(pat.ScopeIdentityRead), func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.GetUserRequest{UserId: fx.victim.ID}
	}},
	"/gitpod.v1.UserService/SetSuspended": {userAdmin(pat.ScopeAdmin), func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.SetSuspendedRequest{UserId: fx.victim.ID, Suspended: false}
	}},
	"/gitpod.v1.UserService/DeleteUser": {userAdmin(pat.ScopeAdmin), func(fx *matrixFx, _ cred) proto.Message {
		p, err := CreatePrincipal(context.Background(), fx.e.store, testCaller, fx.acme.ID, storage.PrincipalUser, "leaver", "", time.Now())
		if err != nil {
			fx.t.Fatal(err)
		}
		return &gitpodv1.DeleteUserRequest{UserId: p.ID}
	}},
	"/gitpod.v1.UserService/SetPreference":            {notStored, func(*matrixFx, cred) proto.Message { return &gitpodv1.SetPreferenceRequest{} }},
	"/gitpod.v1.UserService/GetPreference":            {notStored, func(*matrixFx, cred) proto.Message { return &gitpodv1.GetPreferenceRequest{} }},
	"/gitpod.v1.UserService/ListPreferences":          {notStored, func(*matrixFx, cred) proto.Message { return &gitpodv1.ListPreferencesRequest{} }},
	"/gitpod.v1.UserService/DeletePreference":         {notStored, func(*matrixFx, cred) proto.Message { return &gitpodv1.DeletePreferenceRequest{} }},
	"/gitpod.v1.UserService/GetDotfilesConfiguration": {notStored, func(*matrixFx, cred) proto.Message { return &gitpodv1.GetDotfilesConfigurationRequest{} }},
	"/gitpod.v1.UserService/SetDotfilesConfiguration": {notStored, func(*matrixFx, cred) proto.Message { return &gitpodv1.SetDotfilesConfigurationRequest{} }},
	"/gitpod.v1.UserService/CreatePersonalAccessToken": {mintPAT, func(*matrixFx, cred) proto.Message {
		// Scopes the tokens:write PAT holds (no scopes would ask for "*").
		return &gitpodv1.CreatePersonalAccessTokenRequest{Description: "matrix", Scopes: []string{pat.ScopeTokensWrite}, ValidFor: twoDays}
	}},
	"/gitpod.v1.UserService/ListPersonalAccessTokens": {scoped(scopeRead), func(*matrixFx, cred) proto.Message {
		return &gitpodv1.ListPersonalAccessTokensRequest{}
	}},
	"/gitpod.v1.UserService/GetPersonalAccessToken": {scoped(scopeRead), func(fx *matrixFx, c cred) proto.Message {
		return &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: fx.ownPAT(c)}
	}},
	"/gitpod.v1.UserService/UpdatePersonalAccessToken": {scoped(pat.ScopeTokensWrite), func(fx *matrixFx, c cred) proto.Message {
		d := "renamed"
		return &gitpodv1.UpdatePersonalAccessTokenRequest{PersonalAccessTokenId: fx.ownPAT(c), Description: &d}
	}},
	"/gitpod.v1.UserService/RegeneratePersonalAccessToken": {mintPAT, func(fx *matrixFx, c cred) proto.Message {
		return &gitpodv1.RegeneratePersonalAccessTokenRequest{PersonalAccessTokenId: fx.ownPAT(c), ValidFor: twoDays}
	}},
	"/gitpod.v1.UserService/DeletePersonalAccessToken": {scoped(pat.ScopeTokensWrite), func(fx *matrixFx, c cred) proto.Message {
		return &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: fx.ownPAT(c)}
	}},
	// gitpod.v1.RunnerConfigurationService
	"/gitpod.v1.RunnerConfigurationService/CreateHostAuthenticationToken": {vaultCreate, func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.CreateHostAuthenticationTokenRequest{RunnerId: fx.runner.ID, Subject: &gitpodv1.Subject{Id: fx.ada.ID},
			Host: "gitlab.com", Token: "glpat-matrix", Source: gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT}
	}},
	"/gitpod.v1.RunnerConfigurationService/GetHostAuthenticationToken": {vault(scopeRead), func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.GetHostAuthenticationTokenRequest{Id: fx.hostTok}
	}},
	"/gitpod.v1.RunnerConfigurationService/ListHostAuthenticationTokens": {scoped(scopeRead), func(*matrixFx, cred) proto.Message {
		return &gitpodv1.ListHostAuthenticationTokensRequest{}
	}},
	// The expiry, the same each time (the token has none at first), so
	// never later than the one stored: a later expiry or a new value for
	// a user's token follows vaultCreate's rule instead, pinned by
	// TestRunnerCannotPlantUserToken.
	"/gitpod.v1.RunnerConfigurationService/UpdateHostAuthenticationToken": {vault(pat.ScopeTokensWrite), func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.UpdateHostAuthenticationTokenRequest{Id: fx.hostTok, ExpiresAt: timestamppb.New(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))}
	}},
	"/gitpod.v1.RunnerConfigurationService/DeleteHostAuthenticationToken": {vault(pat.ScopeTokensWrite), func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.DeleteHostAuthenticationTokenRequest{Id: fx.newHostToken()}
	}},
	"/gitpod.v1.RunnerConfigurationService/UpdateHostAuthenticationTokenMetadata": {vaultRunner, func(fx *matrixFx, _ cred) proto.Message {
		ext := "octocat"
		return &gitpodv1.UpdateHostAuthenticationTokenMetadataRequest{RunnerId: fx.runner.ID, Id: fx.hostTok, ExternalUserId: &ext}
	}},
	// gitpod.v1.RunnerInteractionService
	"/gitpod.v1.RunnerInteractionService/GetHostAuthenticationTokenValue": {runnerSelf, func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: fx.runner.ID, PrincipalId: fx.ada.ID, Host: "github.com"}
	}},
	// sts.v1.RunnerKeyService
	"/sts.v1.RunnerKeyService/SetRunnerPublicKey": {sameOrgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.SetRunnerPublicKeyRequest{RunnerId: fx.runner.ID, PublicKey: fx.runnerKey}
	}},
	"/sts.v1.RunnerKeyService/GetRunnerPublicKey": {sameOrgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.GetRunnerPublicKeyRequest{RunnerId: fx.runner.ID}
	}},
	// sts.v1.OrganizationService
	"/sts.v1.OrganizationService/CreateOrganization": {instanceAdmin, func(*matrixFx, cred) proto.Message {
		return &stsv1.CreateOrganizationRequest{Name: "org-" + rand.Text()[:8]}
	}},
	// acme's ID in upper case: the same organization for every
	// credential, acme's administrators' and the others' (docs/security.md
	// T-215).
	"/sts.v1.OrganizationService/GetOrganization": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.GetOrganizationRequest{OrganizationId: strings.ToUpper(fx.acme.ID)}
	}},
	"/sts.v1.OrganizationService/ListOrganizations": {anyAdmin, func(*matrixFx, cred) proto.Message {
		return &stsv1.ListOrganizationsRequest{}
	}},
	// sts.v1.RevocationService
	"/sts.v1.RevocationService/RevokeSubject": {instanceAdmin, func(*matrixFx, cred) proto.Message {
		return &stsv1.RevokeSubjectRequest{Subject: "repo:acme/app:ref:refs/heads/main"}
	}},
	"/sts.v1.OrganizationService/UpdateOrganization": {instanceAdmin, func(fx *matrixFx, _ cred) proto.Message {
		tier := "enterprise"
		return &stsv1.UpdateOrganizationRequest{OrganizationId: fx.acme.ID, Tier: &tier}
	}},
	"/sts.v1.OrganizationService/DeleteOrganization": {instanceAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.DeleteOrganizationRequest{OrganizationId: fx.newOrg()}
	}},
	// sts.v1.PrincipalService
	"/sts.v1.PrincipalService/CreatePrincipal": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.CreatePrincipalRequest{OrganizationId: fx.acme.ID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "new"}
	}},
	"/sts.v1.PrincipalService/GetPrincipal": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.GetPrincipalRequest{PrincipalId: fx.victim.ID}
	}},
	"/sts.v1.PrincipalService/ListPrincipals": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.ListPrincipalsRequest{OrganizationId: fx.acme.ID}
	}},
	"/sts.v1.PrincipalService/SetPrincipalDisabled": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.SetPrincipalDisabledRequest{PrincipalId: fx.victim.ID, Disabled: false}
	}},
	"/sts.v1.PrincipalService/DeletePrincipal": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.DeletePrincipalRequest{PrincipalId: fx.newPrincipal()}
	}},
	"/sts.v1.PrincipalService/CreateExchangeToken": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.CreateExchangeTokenRequest{PrincipalId: fx.victim.ID}
	}},
	// sts.v1.ClientService
	"/sts.v1.ClientService/CreateClient": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.CreateClientRequest{OrganizationId: fx.acme.ID, PrincipalId: fx.sa.ID, GrantTypes: []string{oauth2.GrantTypeClientCredentials}}
	}},
	"/sts.v1.ClientService/GetClient": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.GetClientRequest{ClientId: strings.ToUpper(fx.client)} // T-215, as GetOrganization
	}},
	"/sts.v1.ClientService/ListClients": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.ListClientsRequest{OrganizationId: fx.acme.ID}
	}},
	"/sts.v1.ClientService/UpdateClient": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		n := "renamed"
		return &stsv1.UpdateClientRequest{ClientId: fx.client, Name: &n}
	}},
	"/sts.v1.ClientService/RotateClientSecret": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.RotateClientSecretRequest{ClientId: fx.client}
	}},
	"/sts.v1.ClientService/DeleteClient": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.DeleteClientRequest{ClientId: fx.newClient()}
	}},
	// sts.v1.PoolService
	"/sts.v1.PoolService/CreatePool": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.CreatePoolRequest{PoolId: "n-" + strings.ToLower(rand.Text()[:10]), OrganizationId: fx.acme.ID,
			Mapping: &stsv1.PoolMapping{Subject: "assertion.sub"}}
	}},
	"/sts.v1.PoolService/GetPool": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.GetPoolRequest{PoolId: "acme-pool"}
	}},
	"/sts.v1.PoolService/ListPools": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.ListPoolsRequest{OrganizationId: fx.acme.ID}
	}},
	"/sts.v1.PoolService/UpdatePool": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		n := "renamed"
		return &stsv1.UpdatePoolRequest{PoolId: "acme-pool", DisplayName: &n}
	}},
	"/sts.v1.PoolService/DeletePool": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.DeletePoolRequest{PoolId: fx.newPool()}
	}},
	"/sts.v1.PoolService/CreateProvider": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		id := "n-" + strings.ToLower(rand.Text()[:10])
		return &stsv1.CreateProviderRequest{PoolId: "acme-pool", ProviderId: id, Issuer: "https://" + id + ".example",
			Audiences: []string{"sts"}, JwksUri: "https://" + id + ".example/jwks"}
	}},
	"/sts.v1.PoolService/GetProvider": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.GetProviderRequest{PoolId: "acme-pool", ProviderId: "acme-provider"}
	}},
	"/sts.v1.PoolService/ListProviders": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.ListProvidersRequest{PoolId: "acme-pool"}
	}},
	"/sts.v1.PoolService/UpdateProvider": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		d := false
		return &stsv1.UpdateProviderRequest{PoolId: "acme-pool", ProviderId: "acme-provider", Disabled: &d}
	}},
	"/sts.v1.PoolService/DeleteProvider": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.DeleteProviderRequest{PoolId: "acme-pool", ProviderId: fx.newProvider("acme-pool")}
	}},
	"/sts.v1.PoolService/TestPool": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		// Naming acme's client, which the dry run judges as the exchange
		// would (docs/security.md T-214): a verdict, not an error.
		return &stsv1.TestPoolRequest{PoolId: "acme-pool", SubjectToken: "not-a-jwt", ClientId: fx.client}
	}},
	// sts.v1.KeyService
	"/sts.v1.KeyService/ListSigningKeys": {instanceAdmin, func(*matrixFx, cred) proto.Message {
		return &stsv1.ListSigningKeysRequest{}
	}},
	"/sts.v1.KeyService/RotateSigningKey": {instanceAdmin, func(*matrixFx, cred) proto.Message {
		return &stsv1.RotateSigningKeyRequest{Force: true}
	}},
	// The current next key: revoking it (a fresh next key replaces it)
	// leaves the key that signed the matrix's access tokens alone.
	"/sts.v1.KeyService/RevokeSigningKey": {instanceAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.RevokeSigningKeyRequest{Kid: fx.nextKey()}
	}},
	// gRPC health and reflection: no credential, whatever is sent
	// (Handler.handlers mounts them outside the middleware). The streaming
	// ones (build nil) are not walked: Connect JSON unary cannot call them;
	// TestReflectionListsEveryService calls reflection without a credential.
	"/grpc.health.v1.Health/Check": {public, func(*matrixFx, cred) proto.Message {
		return &healthpb.HealthCheckRequest{Service: "sts.v1.PoolService"}
	}},
	// In grpc-go's descriptor, not served by connect's grpchealth: no
	// credential is asked, and the answer is unimplemented to anyone.
	"/grpc.health.v1.Health/List": {func(cred) outcome { return "unimplemented" }, func(*matrixFx, cred) proto.Message {
		return &healthpb.HealthListRequest{}
	}},
	"/grpc.health.v1.Health/Watch":                                   {public, nil},
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {public, nil},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {public, nil},
	// sts.v1.AuditService
	"/sts.v1.AuditService/ListAuditEvents": {orgAdmin, func(fx *matrixFx, _ cred) proto.Message {
		return &stsv1.ListAuditEventsRequest{OrganizationId: fx.acme.ID}
	}},
}

// variant is a second request shape of a procedure whose rule differs
// from its row's: docs/authorization.md gives it in the row's text
// ("`userId` naming another user: userAdmin(tokens:write)").
type variant struct {
	name, procedure string
	row
}

// variants are walked with every credential after the rows.
var variants = []variant{
	{"GetUser of the caller itself", "/gitpod.v1.UserService/GetUser", row{scoped(pat.ScopeIdentityRead), func(*matrixFx, cred) proto.Message {
		return &gitpodv1.GetUserRequest{}
	}}},
	{"ListPersonalAccessTokens of another user", "/gitpod.v1.UserService/ListPersonalAccessTokens", row{userAdmin(scopeRead), func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.ListPersonalAccessTokensRequest{Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{fx.victim.ID}}}
	}}},
	// The administrator's rule first (the owner is read before the
	// expiry is judged), then mintPAT's.
	{"CreatePersonalAccessToken for another user", "/gitpod.v1.UserService/CreatePersonalAccessToken", row{func(c cred) outcome {
		if o := userAdmin(pat.ScopeTokensWrite)(c); o != allowed {
			return o
		}
		return mintPAT(c)
	}, func(fx *matrixFx, _ cred) proto.Message {
		return &gitpodv1.CreatePersonalAccessTokenRequest{UserId: fx.victim.ID, Description: "matrix", Scopes: []string{pat.ScopeTokensWrite}, ValidFor: twoDays}
	}}},
	{"ListAuditEvents without organizationId", "/sts.v1.AuditService/ListAuditEvents", row{anyAdmin, func(*matrixFx, cred) proto.Message {
		return &stsv1.ListAuditEventsRequest{}
	}}},
	// The one list that needs its organizationId (docs/api.md), asked of
	// administrators only.
	{"ListPrincipals without organizationId", "/sts.v1.PrincipalService/ListPrincipals", row{func(c cred) outcome {
		if o := anyAdmin(c); o != allowed {
			return o
		}
		return "invalid_argument"
	}, func(*matrixFx, cred) proto.Message {
		return &stsv1.ListPrincipalsRequest{}
	}}},
}

// matrixPackages are the proto packages whose every procedure needs a row.
var matrixPackages = []protoreflect.FullName{"gitpod.v1", "sts.v1"}

// describedProcedures lists every procedure of matrixPackages in the
// generated descriptors linked into this binary.
func describedProcedures() []string {
	var out []string
	for _, pkg := range matrixPackages {
		protoregistry.GlobalFiles.RangeFilesByPackage(pkg, func(fd protoreflect.FileDescriptor) bool {
			for i := range fd.Services().Len() {
				sd := fd.Services().Get(i)
				for j := range sd.Methods().Len() {
					out = append(out, "/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name()))
				}
			}
			return true
		})
	}
	slices.Sort(out)
	return out
}

// mountedProcedures lists every procedure of every service Mount serves,
// asked of the handlers it mounts (health and reflection included), so a
// service mounted from a package outside matrixPackages needs its rows
// too. A mounted service whose descriptor is not linked is an error.
func mountedProcedures(t *testing.T) []string {
	t.Helper()
	var out []string
	for path := range (&Handler{}).handlers() {
		procs := proceduresOf([]string{strings.Trim(path, "/")})
		if len(procs) == 0 {
			t.Errorf("mounted service %s has no procedure in the linked descriptors", path)
		}
		out = append(out, procs...)
	}
	return out
}

// servedProcedures are the procedures of the generated descriptors and of
// the mounted handlers, sorted, each once.
func servedProcedures(t *testing.T) []string {
	out := append(describedProcedures(), mountedProcedures(t)...)
	slices.Sort(out)
	return slices.Compact(out)
}

// TestAuthorizationMatrixComplete fails for a procedure without a row (a
// new RPC must get its rows in docs/authorization.md and here), whether
// generated in matrixPackages or mounted from elsewhere, and for a row
// without a procedure.
func TestAuthorizationMatrixComplete(t *testing.T) {
	t.Parallel()
	procs := servedProcedures(t)
	if len(procs) < len(matrix) {
		t.Errorf("found %d procedures in the descriptors, fewer than the %d rows", len(procs), len(matrix))
	}
	for _, p := range procs {
		if _, ok := matrix[p]; !ok {
			t.Errorf("procedure %s has no row in the authorization matrix (matrix_test.go and docs/authorization.md)", p)
		}
	}
	for p := range matrix {
		if !slices.Contains(procs, p) {
			t.Errorf("matrix row %s names no generated procedure", p)
		}
	}
}

// TestAuthorizationMatrix walks every cell on SQLite and, when
// STS_TEST_POSTGRES_DSN is set, on PostgreSQL.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // the longest test here: its backends overlap
			fx, creds := newMatrixFx(t, open(t))
			procs := servedProcedures(t)
			for _, p := range procs {
				r, ok := matrix[p]
				if !ok || r.build == nil {
					continue // reported by TestAuthorizationMatrixComplete; streaming, see the row
				}
				for _, c := range creds {
					want := r.rule(c)
					got, msg := fx.call(p, r.build(fx, c), c.token)
					if got != want {
						t.Errorf("%s as %s: got %s (%s), want %s", p, c.name, got, msg, want)
					}
				}
			}
			for _, v := range variants {
				for _, c := range creds {
					want := v.rule(c)
					got, msg := fx.call(v.procedure, v.build(fx, c), c.token)
					if got != want {
						t.Errorf("%s (%s) as %s: got %s (%s), want %s", v.procedure, v.name, c.name, got, msg, want)
					}
				}
			}
		})
	}
}

// newMatrixFx builds the two organizations, their principals and
// records, and one credential of every kind.
func newMatrixFx(t *testing.T, store storage.Store) (*matrixFx, []cred) {
	t.Helper()
	kr := newKeyring(t)
	m := newManager(t, store, kr)
	if err := m.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	sealKeys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	// As serve wires it: what a token derives from (principal, PAT,
	// client, pool) is checked through the node's trust registry, which
	// a PoolService change refreshes at once.
	compiler, err := pools.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	registry := &trust.Registry{Store: store, Compiler: compiler}
	e := newEnvOn(t, store, func(h *Handler) {
		h.Keys, h.Audit = m, store
		h.Issuer = &tokens.Issuer{Signer: m, IssuerURL: testIssuer}
		h.Verifier = &tokens.Verifier{Keys: m, Issuer: testIssuer, Revocations: tokens.StoreRevocations{Store: store},
			Sources: tokens.NewStoreSources(store, registry)}
		ps, err := pools.NewService(store, pools.Limits{MaxTokenLifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ps.SetOnChange(registry.Refresh)
		h.Pools = ps
		h.SetHostTokens(&hosttoken.Service{Store: store, Envelope: &seal.Envelope{Keyring: sealKeys}, Audit: &audit.Writer{Store: store}})
	})
	ctx := context.Background()
	now := time.Now()
	mk := func(org string, kind storage.PrincipalKind, name string) storage.Principal {
		p, err := CreatePrincipal(ctx, store, testCaller, org, kind, name, "", now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	fx := &matrixFx{t: t, e: e, acme: e.org, ada: e.user, root: e.admin}
	if fx.evil, err = CreateOrganization(ctx, store, testCaller, "evil", "free", now); err != nil {
		t.Fatal(err)
	}
	fx.victim = mk(fx.acme.ID, storage.PrincipalUser, "victim")
	fx.runner = mk(fx.acme.ID, storage.PrincipalRunner, "runner")
	fx.sa = mk(fx.acme.ID, storage.PrincipalServiceAccount, "ci")
	acmeAdmin := mk(fx.acme.ID, storage.PrincipalUser, "acme-admin")
	evilAdmin := mk(fx.evil.ID, storage.PrincipalUser, "evil-admin")
	root := mk(fx.evil.ID, storage.PrincipalUser, "root")
	if err := store.UpdatePrincipal(ctx, root.ID, func(p storage.Principal) (storage.Principal, error) {
		p.InstanceAdmin = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	fx.client = fx.newClient()
	fx.must("/sts.v1.PoolService/CreatePool", &stsv1.CreatePoolRequest{PoolId: "acme-pool", OrganizationId: fx.acme.ID,
		Mapping: &stsv1.PoolMapping{Subject: "assertion.sub"}})
	fx.must("/sts.v1.PoolService/CreateProvider", &stsv1.CreateProviderRequest{PoolId: "acme-pool", ProviderId: "acme-provider",
		Issuer: "https://acme.example", Audiences: []string{"sts"}, JwksUri: "https://acme.example/jwks"})
	// A disabled client and a disabled pool: the tokens they issued
	// authenticate nowhere (docs/security.md ).
	goneClient := fx.newClient()
	fx.must("/sts.v1.ClientService/UpdateClient", &stsv1.UpdateClientRequest{ClientId: goneClient, Disabled: new(true)})
	fx.must("/sts.v1.PoolService/CreatePool", &stsv1.CreatePoolRequest{PoolId: "gone-pool", OrganizationId: fx.acme.ID,
		Mapping: &stsv1.PoolMapping{Subject: "assertion.sub"}, PrincipalId: fx.sa.ID})
	fx.must("/sts.v1.PoolService/CreateProvider", &stsv1.CreateProviderRequest{PoolId: "gone-pool", ProviderId: "p",
		Issuer: "https://gone.example", Audiences: []string{"sts"}, JwksUri: "https://gone.example/jwks"})
	fx.must("/sts.v1.PoolService/UpdatePool", &stsv1.UpdatePoolRequest{PoolId: "gone-pool", Disabled: new(true)})
	fx.hostTok = fx.newHostToken()
	fx.runnerKey = make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, fx.runnerKey); err != nil {
		t.Fatal(err)
	}
	if err := store.PutRunnerKey(ctx, storage.RunnerKey{RunnerID: fx.runner.ID, OrgID: fx.acme.ID, PublicKey: fx.runnerKey,
		CreatedAt: storage.Now(now), UpdatedAt: storage.Now(now)}); err != nil {
		t.Fatal(err)
	}

	userPAT := func(scopes ...string) cred {
		name := "PAT " + strings.Join(scopes, "+")
		if len(scopes) == 0 {
			name = "PAT (no scopes)"
		}
		return cred{name: name, token: e.mintPAT(fx.ada.ID, scopes...), principal: fx.ada.ID, scopes: scopes, pat: true, org: "acme", role: "user"}
	}
	accessWith := func(p storage.Principal, scope, clientID, pool string, cab map[string]any) string {
		c := tokens.AccessClaims{Subject: p.ID, Audience: tokens.Audience{testIssuer},
			IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)),
			ClientID: clientID, Scope: scope, OrgID: p.OrgID, Principal: string(p.Kind), CAB: cab}
		if pool != "" {
			c.Pool, c.Provider = pool, "p"
		}
		tok, _, err := e.h.Issuer.MintAccessToken(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	accessVia := func(p storage.Principal, scope, clientID, pool string) string {
		return accessWith(p, scope, clientID, pool, nil)
	}
	access := func(p storage.Principal, scope string) string { return accessVia(p, scope, "matrix", "") }
	// A token downscoped at the Google STS dialect (options.accessBoundary).
	boundary := map[string]any{"accessBoundary": map[string]any{"accessBoundaryRules": []any{map[string]any{
		"availableResource": "//storage.example/buckets/reports", "availablePermissions": []any{"storage.objects.get"}}}}}
	var ex gitpodv1.ExchangeTokenResponse
	fx.callInto("/gitpod.v1.IdentityService/ExchangeToken", &gitpodv1.ExchangeTokenRequest{ExchangeToken: fx.exchangeToken(fx.ada.ID)}, "", &ex)
	federated, _, err := e.h.Issuer.MintAccessToken(ctx, tokens.AccessClaims{Subject: "repo:acme/app", Audience: tokens.Audience{testIssuer},
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)), ClientID: "matrix", Scope: "*"})
	if err != nil {
		t.Fatal(err)
	}
	full, adm := []string{pat.ScopeFull}, []string{pat.ScopeFull, pat.ScopeAdmin}
	// The access token of acme's administrator exchanged from its 30-day
	// "* sts:admin" PAT, naming that PAT as exchange does.
	adminPAT, err := e.pats.Authenticate(ctx, e.mintPAT(acmeAdmin.ID, adm...))
	if err != nil {
		t.Fatal(err)
	}
	adminPATRec, err := store.GetPAT(ctx, adminPAT.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	fromAdminPAT, _, err := e.h.Issuer.MintAccessToken(ctx, tokens.AccessClaims{Subject: acmeAdmin.ID, Audience: tokens.Audience{testIssuer},
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)), ClientID: "pat",
		Scope: "* sts:admin", OrgID: acmeAdmin.OrgID, Principal: string(acmeAdmin.Kind),
		PATID: adminPATRec.ID, PATGeneration: tokens.PATGeneration(adminPATRec.Digest)})
	if err != nil {
		t.Fatal(err)
	}
	// Credentials that must authenticate nowhere: what they name is
	// gone, or they are no access token of ours for this API.
	gonePAT := e.mintPAT(fx.ada.ID, pat.ScopeFull)
	gonePATAuth, err := e.pats.Authenticate(ctx, gonePAT)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pats.Delete(ctx, testCaller, fx.ada.ID, gonePATAuth.TokenID); err != nil {
		t.Fatal(err)
	}
	disabled := mk(fx.acme.ID, storage.PrincipalUser, "disabled")
	disabledPAT := e.mintPAT(disabled.ID, adm...)
	disabledAccess := access(disabled, "* sts:admin")
	if err := store.UpdatePrincipal(ctx, disabled.ID, func(p storage.Principal) (storage.Principal, error) {
		p.Disabled = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	otherIssuer, _, err := (&tokens.Issuer{Signer: m, IssuerURL: "https://other.example"}).MintAccessToken(ctx, tokens.AccessClaims{
		Subject: acmeAdmin.ID, Audience: tokens.Audience{testIssuer}, IssuedAt: tokens.NewNumericDate(now),
		Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)), ClientID: "matrix", Scope: "* sts:admin", OrgID: acmeAdmin.OrgID,
		Principal: string(acmeAdmin.Kind)})
	if err != nil {
		t.Fatal(err)
	}
	otherAudience, _, err := e.h.Issuer.MintAccessToken(ctx, tokens.AccessClaims{
		Subject: acmeAdmin.ID, Audience: tokens.Audience{"https://api.example"}, IssuedAt: tokens.NewNumericDate(now),
		Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)), ClientID: "matrix", Scope: "* sts:admin", OrgID: acmeAdmin.OrgID,
		Principal: string(acmeAdmin.Kind)})
	if err != nil {
		t.Fatal(err)
	}
	idToken, _, err := e.h.Issuer.MintIDToken(ctx, tokens.IDClaims{Subject: acmeAdmin.ID, Audience: tokens.Audience{testIssuer},
		Expiry: tokens.NewNumericDate(now.Add(time.Hour)), OrgID: acmeAdmin.OrgID, Principal: string(acmeAdmin.Kind)})
	if err != nil {
		t.Fatal(err)
	}
	evilUser := mk(fx.evil.ID, storage.PrincipalUser, "evil-user")
	creds := []cred{
		{name: "no credential"},
		{name: "garbage", token: "not-a-token"},
		{name: "refresh token as bearer", token: "sts_rt_" + rand.Text()},
		{name: "deleted PAT", token: gonePAT, scopes: full},
		{name: "PAT of a disabled principal", token: disabledPAT, scopes: adm},
		{name: "access token of a disabled principal", token: disabledAccess, scopes: adm},
		{name: "access token of another issuer", token: otherIssuer, scopes: adm},
		{name: "access token for another audience", token: otherAudience, scopes: adm},
		{name: "ID token as bearer", token: idToken, scopes: adm},
		{name: "PAT * of another organization's user", token: e.mintPAT(evilUser.ID, pat.ScopeFull), principal: evilUser.ID, scopes: full,
			pat: true, org: "evil", role: "user"},
		userPAT(),
		userPAT(pat.ScopeIdentityRead),
		userPAT(pat.ScopeTokensRead),
		userPAT(pat.ScopeTokensWrite),
		userPAT(pat.ScopeFull),
		{name: "access token from ExchangeToken", token: ex.GetAccessToken(), principal: fx.ada.ID, scopes: full, org: "acme", role: "user"},
		{name: "access token from PAT exchange (org admin)", token: fromAdminPAT, principal: acmeAdmin.ID, scopes: adm, org: "acme", role: "orgadmin", fromPAT: true},
		{name: "access token from client_credentials (org admin)", token: access(acmeAdmin, "* sts:admin"), principal: acmeAdmin.ID, scopes: adm, org: "acme", role: "orgadmin"},
		{name: "access token from client_credentials", token: access(fx.sa, "*"), principal: fx.sa.ID, scopes: full, org: "acme", role: "sa"},
		{name: "access token from federated exchange (no principal)", token: federated, scopes: full},
		// No organization: what the token names is gone, so it is
		// unauthenticated everywhere.
		{name: "access token of a disabled client", token: accessVia(fx.sa, "* sts:admin", goneClient, ""), scopes: adm},
		{name: "access token of a disabled pool (bound principal)", token: accessVia(fx.sa, "* sts:admin", "", "gone-pool"), scopes: adm},
		// A boundary the API cannot honour: permission_denied everywhere,
		// though it holds sts:admin (docs/security.md A-53).
		{name: "cab-bound access token (org admin)", token: accessWith(acmeAdmin, "* sts:admin", "matrix", "", boundary),
			principal: acmeAdmin.ID, scopes: adm, org: "acme", role: "orgadmin", bounded: true},
		{name: "runner PAT *", token: e.mintPAT(fx.runner.ID, pat.ScopeFull), principal: fx.runner.ID, scopes: full, pat: true, org: "acme", role: "runner"},
		{name: "org admin PAT (acme)", token: e.mintPAT(acmeAdmin.ID, adm...), principal: acmeAdmin.ID, scopes: adm, pat: true, org: "acme", role: "orgadmin"},
		{name: "org admin PAT (evil)", token: e.mintPAT(evilAdmin.ID, adm...), principal: evilAdmin.ID, scopes: adm, pat: true, org: "evil", role: "orgadmin"},
		{name: "instance admin PAT (evil)", token: e.mintPAT(root.ID, adm...), principal: root.ID, scopes: adm, pat: true, org: "evil", role: "instance"},
	}
	return fx, creds
}

// call sends req to procedure as Connect JSON over the env's HTTP/2
// client and returns the outcome and the error message.
func (fx *matrixFx) call(procedure string, req proto.Message, token string) (outcome, string) {
	fx.t.Helper()
	return fx.callInto(procedure, req, token, nil)
}

func (fx *matrixFx) callInto(procedure string, req proto.Message, token string, res proto.Message) (outcome, string) {
	fx.t.Helper()
	body, err := protojson.Marshal(req)
	if err != nil {
		fx.t.Fatal(err)
	}
	r, err := http.NewRequest(http.MethodPost, fx.e.srv.URL+procedure, bytes.NewReader(body))
	if err != nil {
		fx.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := fx.e.srv.Client().Do(r)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if res != nil {
			if err := protojson.Unmarshal(b, res); err != nil {
				fx.t.Fatal(err)
			}
		}
		return allowed, ""
	}
	var ce struct{ Code, Message string }
	_ = json.Unmarshal(b, &ce)
	if ce.Code == "" && resp.StatusCode == http.StatusNotFound {
		// A path no handler serves: HTTP 404, which the Connect protocol
		// reads as unimplemented.
		return "unimplemented", ""
	}
	return outcome(ce.Code), ce.Message
}

// must and mustInto make fixture changes as the instance administrator.
func (fx *matrixFx) must(procedure string, req proto.Message) { fx.mustInto(procedure, req, nil) }

func (fx *matrixFx) mustInto(procedure string, req proto.Message, res proto.Message) {
	fx.t.Helper()
	token := fx.root
	if strings.HasPrefix(procedure, "/gitpod.v1.RunnerConfigurationService/") {
		token = fx.e.secret // the vault is per organization: ada stores her own
	}
	if got, msg := fx.callInto(procedure, req, token, res); got != allowed {
		fx.t.Fatalf("fixture %s: %s %s", procedure, got, msg)
	}
}
