package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestOrgAdminConfinedToOwnOrganization: sts:admin makes a principal the
// administrator of its own organization only. The admin of evil cannot
// see or touch acme's principals, clients, pools or audit trail, cannot
// mint an exchange token for an acme user, and cannot create
// organizations or rotate keys; those need an instance administrator.
func TestOrgAdminConfinedToOwnOrganization(t *testing.T) {
	t.Parallel()
	pe := newPoolEnvOn(t, newSQLiteStore(t))
	e := pe.env
	e.h.Audit = e.store
	ctx := context.Background()
	evilOrg, evil := e.evilAdmin(t)
	sa := e.serviceAccount("ci")
	c := e.clients(e.srv.URL)
	cl, err := c.client.CreateClient(as(e.admin), &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: sa.ID,
		GrantTypes: []string{oauth2.GrantTypeClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	pools := pe.poolClient(e.srv.URL)
	if _, err := pools.CreatePool(as(e.admin), pe.validPool("acme-ci")); err != nil {
		t.Fatal(err)
	}
	keys := stsv1connect.NewKeyServiceClient(e.srv.Client(), e.srv.URL)
	auditc := stsv1connect.NewAuditServiceClient(e.srv.Client(), e.srv.URL)

	nf := connect.CodeNotFound
	calls := []struct {
		name string
		call func() error
		want connect.Code
	}{
		{"GetOrganization", func() error {
			_, err := c.org.GetOrganization(evil, &stsv1.GetOrganizationRequest{OrganizationId: e.org.ID})
			return err
		}, nf},
		{"CreateOrganization", func() error {
			_, err := c.org.CreateOrganization(evil, &stsv1.CreateOrganizationRequest{Name: "evil2"})
			return err
		}, connect.CodePermissionDenied},
		{"ListPrincipals", func() error {
			_, err := c.principal.ListPrincipals(evil, &stsv1.ListPrincipalsRequest{OrganizationId: e.org.ID})
			return err
		}, nf},
		{"GetPrincipal", func() error {
			_, err := c.principal.GetPrincipal(evil, &stsv1.GetPrincipalRequest{PrincipalId: e.user.ID})
			return err
		}, nf},
		{"CreatePrincipal", func() error {
			_, err := c.principal.CreatePrincipal(evil, &stsv1.CreatePrincipalRequest{OrganizationId: e.org.ID,
				Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "plant"})
			return err
		}, nf},
		{"SetPrincipalDisabled", func() error {
			_, err := c.principal.SetPrincipalDisabled(evil, &stsv1.SetPrincipalDisabledRequest{PrincipalId: e.user.ID, Disabled: true})
			return err
		}, nf},
		{"CreateExchangeToken", func() error {
			_, err := c.principal.CreateExchangeToken(evil, &stsv1.CreateExchangeTokenRequest{PrincipalId: e.user.ID})
			return err
		}, nf},
		{"ListClients", func() error {
			_, err := c.client.ListClients(evil, &stsv1.ListClientsRequest{OrganizationId: e.org.ID})
			return err
		}, nf},
		{"GetClient", func() error {
			_, err := c.client.GetClient(evil, &stsv1.GetClientRequest{ClientId: cl.GetClient().GetId()})
			return err
		}, nf},
		{"RotateClientSecret", func() error {
			_, err := c.client.RotateClientSecret(evil, &stsv1.RotateClientSecretRequest{ClientId: cl.GetClient().GetId()})
			return err
		}, nf},
		{"ListPools", func() error {
			_, err := pools.ListPools(evil, &stsv1.ListPoolsRequest{OrganizationId: e.org.ID})
			return err
		}, nf},
		{"GetPool", func() error {
			_, err := pools.GetPool(evil, &stsv1.GetPoolRequest{PoolId: "acme-ci"})
			return err
		}, nf},
		{"DeletePool", func() error {
			_, err := pools.DeletePool(evil, &stsv1.DeletePoolRequest{PoolId: "acme-ci"})
			return err
		}, nf},
		{"ListAuditEvents", func() error {
			_, err := auditc.ListAuditEvents(evil, &stsv1.ListAuditEventsRequest{OrganizationId: e.org.ID})
			return err
		}, nf},
		{"ListPersonalAccessTokens(acme user)", func() error {
			_, err := c.user.ListPersonalAccessTokens(evil, &gitpodv1.ListPersonalAccessTokensRequest{
				Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{e.user.ID}}})
			return err
		}, nf},
		{"RotateSigningKey", func() error {
			_, err := keys.RotateSigningKey(evil, &stsv1.RotateSigningKeyRequest{})
			return err
		}, connect.CodePermissionDenied},
	}
	for _, tc := range calls {
		wantCode(t, tc.name, tc.call(), tc.want)
	}

	// Lists without an organization show the caller's own organization.
	lc, err := c.client.ListClients(evil, &stsv1.ListClientsRequest{})
	if err != nil || len(lc.GetClients()) != 0 {
		t.Errorf("ListClients() by evil = %v, %v; want none", lc, err)
	}
	lp, err := pools.ListPools(evil, &stsv1.ListPoolsRequest{})
	if err != nil || len(lp.GetPools()) != 0 {
		t.Errorf("ListPools() by evil = %v, %v; want none", lp, err)
	}
	la, err := auditc.ListAuditEvents(evil, &stsv1.ListAuditEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range la.GetEvents() {
		if ev.GetOrganizationId() != evilOrg.ID {
			t.Errorf("evil's audit list shows %s of organization %s", ev.GetAction(), ev.GetOrganizationId())
		}
	}
	lo, err := c.org.ListOrganizations(evil, &stsv1.ListOrganizationsRequest{})
	if err != nil || len(lo.GetOrganizations()) != 1 || lo.GetOrganizations()[0].GetId() != evilOrg.ID {
		t.Errorf("ListOrganizations by evil = %v, %v; want only evil", lo, err)
	}
	// Nothing changed in acme.
	if u, _ := e.store.GetPrincipal(ctx, e.user.ID); u.Disabled {
		t.Error("evil disabled an acme user")
	}
	if _, err := e.store.GetPool(ctx, "acme-ci"); err != nil {
		t.Errorf("acme pool after evil's delete: %v", err)
	}

	// The instance administrator (the env's admin) sees across organizations.
	if _, err := c.principal.ListPrincipals(as(e.admin), &stsv1.ListPrincipalsRequest{OrganizationId: evilOrg.ID}); err != nil {
		t.Errorf("instance admin ListPrincipals(evil): %v", err)
	}
	lo, err = c.org.ListOrganizations(as(e.admin), &stsv1.ListOrganizationsRequest{})
	if err != nil || len(lo.GetOrganizations()) != 2 {
		t.Errorf("instance admin ListOrganizations = %v, %v; want both", lo, err)
	}
	// An organization admin cannot take over an instance administrator
	// of its own organization.
	acmeAdmin := e.orgAdmin(t, e.org.ID, "acme-admin")
	adm := e.principalNamed(t, "admin")
	_, err = c.principal.CreateExchangeToken(as(acmeAdmin), &stsv1.CreateExchangeTokenRequest{PrincipalId: adm.ID})
	wantCode(t, "exchange token for the instance admin", err, connect.CodePermissionDenied)
	_, err = c.principal.SetPrincipalDisabled(as(acmeAdmin), &stsv1.SetPrincipalDisabledRequest{PrincipalId: adm.ID, Disabled: true})
	wantCode(t, "disable the instance admin", err, connect.CodePermissionDenied)
	_, err = c.user.SetSuspended(as(acmeAdmin), &gitpodv1.SetSuspendedRequest{UserId: adm.ID, Suspended: true})
	wantCode(t, "suspend the instance admin", err, connect.CodePermissionDenied)
	_, err = c.user.DeleteUser(as(acmeAdmin), &gitpodv1.DeleteUserRequest{UserId: adm.ID})
	wantCode(t, "delete the instance admin", err, connect.CodePermissionDenied)
	if got, err := e.store.GetPrincipal(ctx, adm.ID); err != nil || got.Disabled {
		t.Errorf("instance admin after the org admin's attempts: %+v, %v", got, err)
	}
	if _, err := c.principal.CreateExchangeToken(as(acmeAdmin), &stsv1.CreateExchangeTokenRequest{PrincipalId: e.user.ID}); err != nil {
		t.Errorf("org admin exchange token for own user: %v", err)
	}
}

// TestInstanceAdminsByConfiguration: a principal ID in
// Handler.InstanceAdmins (the instance_admins setting) is an instance
// administrator while its credential holds sts:admin.
func TestInstanceAdminsByConfiguration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL)
	p, err := CreatePrincipal(context.Background(), e.store, testCaller, e.org.ID, storage.PrincipalUser, "ops", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin, full := e.mintPAT(p.ID, pat.ScopeFull, pat.ScopeAdmin), e.mintPAT(p.ID, pat.ScopeFull)
	_, err = c.org.CreateOrganization(as(admin), &stsv1.CreateOrganizationRequest{Name: "globex"})
	wantCode(t, "before configuration", err, connect.CodePermissionDenied)
	e.h.InstanceAdmins = []string{p.ID}
	if _, err := c.org.CreateOrganization(as(admin), &stsv1.CreateOrganizationRequest{Name: "globex"}); err != nil {
		t.Errorf("configured instance admin: %v", err)
	}
	_, err = c.org.CreateOrganization(as(full), &stsv1.CreateOrganizationRequest{Name: "initech"})
	wantCode(t, "configured principal without sts:admin", err, connect.CodePermissionDenied)
}

// orgAdmin creates a user in orgID with a PAT holding full access and
// sts:admin (an organization administrator) and returns the PAT.
func (e *env) orgAdmin(t *testing.T, orgID, name string) string {
	t.Helper()
	p, err := CreatePrincipal(context.Background(), e.store, testCaller, orgID, storage.PrincipalUser, name, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e.mintPAT(p.ID, pat.ScopeFull, pat.ScopeAdmin)
}

// TestOrgAdminMintsNoPATForInstanceAdmin (docs/security.md A-37): an
// organization administrator may create PATs for the users of its
// organization, but not for an instance administrator of it (its stored
// flag or the instance_admins setting): a `* sts:admin` PAT owned by that
// principal would make its holder the instance administrator, exactly as
// an exchange token for it would (docs/authorization.md, Roles). Nothing
// is stored for the refused calls. Another user's PATs are otherwise out
// of an administrator's reach: update, regenerate and delete act on the
// caller's own tokens only.
func TestOrgAdminMintsNoPATForInstanceAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL)
	ctx := t.Context()
	acmeAdmin := e.orgAdmin(t, e.org.ID, "acme-admin")
	adm := e.principalNamed(t, "admin")
	ops, err := CreatePrincipal(ctx, e.store, testCaller, e.org.ID, storage.PrincipalUser, "ops", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.h.InstanceAdmins = []string{ops.ID}
	month := durationpb.New(30 * 24 * time.Hour)

	for _, target := range []storage.Principal{adm, ops} {
		for _, scopes := range [][]string{{pat.ScopeFull, pat.ScopeAdmin}, {pat.ScopeIdentityRead}} {
			_, err := c.user.CreatePersonalAccessToken(as(acmeAdmin), &gitpodv1.CreatePersonalAccessTokenRequest{
				UserId: target.ID, Description: "takeover", ValidFor: month, Scopes: scopes})
			wantCode(t, fmt.Sprintf("CreatePersonalAccessToken(%s, %v) by the org admin", target.Name, scopes), err, connect.CodePermissionDenied)
		}
	}
	before, err := e.store.ListPATs(ctx, adm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 {
		t.Fatalf("instance admin has %d PATs after the refused calls, want its own 1", len(before))
	}
	if left, _ := e.store.ListPATs(ctx, ops.ID); len(left) != 0 {
		t.Errorf("configured instance admin has %d PATs after the refused calls, want 0", len(left))
	}

	// The instance admin's own PAT is out of reach: it reads as missing.
	admPAT := before[0].ID
	desc := "mine now"
	_, err = c.user.UpdatePersonalAccessToken(as(acmeAdmin), &gitpodv1.UpdatePersonalAccessTokenRequest{
		PersonalAccessTokenId: admPAT, Description: &desc})
	wantCode(t, "update the instance admin's PAT", err, connect.CodeNotFound)
	_, err = c.user.RegeneratePersonalAccessToken(as(acmeAdmin), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: admPAT, ValidFor: month})
	wantCode(t, "regenerate the instance admin's PAT", err, connect.CodeNotFound)
	_, err = c.user.DeletePersonalAccessToken(as(acmeAdmin), &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: admPAT})
	wantCode(t, "delete the instance admin's PAT", err, connect.CodeNotFound)

	// An ordinary user of the organization still gets one from the org
	// admin, and the instance role creates one for another instance admin.
	if _, err := c.user.CreatePersonalAccessToken(as(acmeAdmin), &gitpodv1.CreatePersonalAccessTokenRequest{
		UserId: e.user.ID, ValidFor: month, Scopes: []string{pat.ScopeIdentityRead}}); err != nil {
		t.Errorf("org admin creates a PAT for an ordinary user: %v", err)
	}
	if _, err := c.user.CreatePersonalAccessToken(as(e.admin), &gitpodv1.CreatePersonalAccessTokenRequest{
		UserId: ops.ID, ValidFor: month, Scopes: []string{pat.ScopeFull, pat.ScopeAdmin}}); err != nil {
		t.Errorf("instance admin creates a PAT for another instance admin: %v", err)
	}
}

// TestOrgAdminBindsNoPoolToInstanceAdmin (docs/security.md A-38): a pool
// bound to a principal issues its tokens as that principal. An
// organization administrator that binds a pool of its own (its own
// issuer, scope sts:admin) to an instance administrator of its
// organization would exchange a JWT it signed itself for that instance
// administrator's sts:admin token. Binding a pool to a principal the
// caller may not act as is permission_denied, on create and on update;
// and a pool the instance role bound to an instance administrator stays
// the instance role's: an organization administrator reads it but
// neither changes nor deletes it or its providers. The refused calls
// change nothing.
func TestOrgAdminBindsNoPoolToInstanceAdmin(t *testing.T) {
	t.Parallel()
	pe := newPoolEnvOn(t, newSQLiteStore(t))
	e := pe.env
	ctx := t.Context()
	c := pe.poolClient(e.srv.URL)
	acmeAdmin := e.orgAdmin(t, e.org.ID, "acme-admin")
	adm := e.principalNamed(t, "admin")
	if _, err := c.CreatePool(as(acmeAdmin), pe.validPool("acme-ci")); err != nil {
		t.Fatal(err)
	}
	root := pe.validPool("root-ci")
	root.PrincipalId = adm.ID
	if _, err := c.CreatePool(as(e.admin), root); err != nil {
		t.Fatalf("instance admin binds a pool to itself: %v", err)
	}
	if _, err := c.CreateProvider(as(e.admin), pe.validProvider("root-ci", "gh")); err != nil {
		t.Fatal(err)
	}
	before := pe.counts(t)
	rootBefore, err := e.store.GetPool(ctx, "root-ci")
	if err != nil {
		t.Fatal(err)
	}

	takeover := pe.validPool("takeover")
	takeover.PrincipalId, takeover.Scopes = adm.ID, []string{pat.ScopeAdmin}
	admin := &stsv1.StringList{Values: []string{pat.ScopeAdmin}}
	issuer := "https://issuer.acme-admin.test"
	mine := pe.validProvider("root-ci", "mine")
	mine.Issuer = issuer
	disabled := true
	calls := []struct {
		name string
		call func() error
	}{
		{"CreatePool bound to the instance admin", func() error {
			_, err := c.CreatePool(as(acmeAdmin), takeover)
			return err
		}},
		{"UpdatePool binding its own pool to the instance admin", func() error {
			_, err := c.UpdatePool(as(acmeAdmin), &stsv1.UpdatePoolRequest{PoolId: "acme-ci", PrincipalId: &adm.ID, Scopes: admin})
			return err
		}},
		{"UpdatePool of the instance admin's pool", func() error {
			_, err := c.UpdatePool(as(acmeAdmin), &stsv1.UpdatePoolRequest{PoolId: "root-ci", Scopes: admin})
			return err
		}},
		{"CreateProvider in the instance admin's pool", func() error {
			_, err := c.CreateProvider(as(acmeAdmin), mine)
			return err
		}},
		{"UpdateProvider in the instance admin's pool", func() error {
			_, err := c.UpdateProvider(as(acmeAdmin), &stsv1.UpdateProviderRequest{PoolId: "root-ci", ProviderId: "gh", Issuer: &issuer})
			return err
		}},
		{"DeleteProvider in the instance admin's pool", func() error {
			_, err := c.DeleteProvider(as(acmeAdmin), &stsv1.DeleteProviderRequest{PoolId: "root-ci", ProviderId: "gh"})
			return err
		}},
		{"UpdatePool disabling the instance admin's pool", func() error {
			_, err := c.UpdatePool(as(acmeAdmin), &stsv1.UpdatePoolRequest{PoolId: "root-ci", Disabled: &disabled})
			return err
		}},
		{"DeletePool of the instance admin's pool", func() error {
			_, err := c.DeletePool(as(acmeAdmin), &stsv1.DeletePoolRequest{PoolId: "root-ci"})
			return err
		}},
	}
	for _, tc := range calls {
		wantCode(t, tc.name, tc.call(), connect.CodePermissionDenied)
	}
	if got := pe.counts(t); got != before {
		t.Errorf("pools, providers, audit events after the refused calls = %v, want %v", got, before)
	}
	if p, err := e.store.GetPool(ctx, "acme-ci"); err != nil || p.PrincipalID != "" {
		t.Errorf("acme-ci after the refused update: principal %q, %v; want none", p.PrincipalID, err)
	}
	if p, err := e.store.GetPool(ctx, "root-ci"); err != nil || !slices.Equal(p.Scopes, rootBefore.Scopes) || p.Disabled {
		t.Errorf("root-ci after the refused calls: %+v, %v; want it unchanged", p, err)
	}

	// The organization administrator still reads the instance admin's
	// pool, and binds its pools to the principals it may act as.
	if _, err := c.GetPool(as(acmeAdmin), &stsv1.GetPoolRequest{PoolId: "root-ci"}); err != nil {
		t.Errorf("org admin reads the instance admin's pool: %v", err)
	}
	if _, err := c.UpdatePool(as(acmeAdmin), &stsv1.UpdatePoolRequest{PoolId: "acme-ci", PrincipalId: &e.user.ID}); err != nil {
		t.Errorf("org admin binds its pool to an ordinary user: %v", err)
	}
	// The instance role manages its pool.
	if _, err := c.UpdatePool(as(e.admin), &stsv1.UpdatePoolRequest{PoolId: "root-ci", Disabled: &disabled}); err != nil {
		t.Errorf("instance admin updates its pool: %v", err)
	}
}

// TestBindingAnotherOrganizationsPrincipalIsNotFound: a pool or client
// bound to a principal of another organization answers not_found with the
// message of a principal that does not exist, so an organization
// administrator cannot tell the two apart and probe other organizations'
// IDs (docs/authorization.md, Roles; security.md A-01).
func TestBindingAnotherOrganizationsPrincipalIsNotFound(t *testing.T) {
	t.Parallel()
	pe := newPoolEnvOn(t, newSQLiteStore(t))
	e := pe.env
	evilOrg, evil := e.evilAdmin(t)
	acmeSA, missing := e.serviceAccount("ci").ID, storage.NewID()
	instanceAdmin := e.principalNamed(t, "admin").ID
	pools, c := pe.poolClient(e.srv.URL), e.clients(e.srv.URL)
	bindPool := func(id, principal string) error {
		req := pe.validPool(id)
		req.OrganizationId, req.PrincipalId = evilOrg.ID, principal
		_, err := pools.CreatePool(evil, req)
		return err
	}
	bindClient := func(principal string) error {
		_, err := c.client.CreateClient(evil, &stsv1.CreateClientRequest{OrganizationId: evilOrg.ID, PrincipalId: principal,
			GrantTypes: []string{oauth2.GrantTypeClientCredentials}})
		return err
	}
	for _, tc := range []struct {
		name               string
		other, nonexistent error
	}{
		{"CreatePool", bindPool("evil-a", acmeSA), bindPool("evil-b", missing)},
		{"CreateClient", bindClient(acmeSA), bindClient(missing)},
		// Not permission_denied: that would say the ID is an instance
		// administrator's.
		{"CreatePool (an instance administrator)", bindPool("evil-c", instanceAdmin), bindPool("evil-d", missing)},
		{"CreateClient (an instance administrator)", bindClient(instanceAdmin), bindClient(missing)},
	} {
		wantCode(t, tc.name+" bound to another organization's principal", tc.other, connect.CodeNotFound)
		wantCode(t, tc.name+" bound to no principal at all", tc.nonexistent, connect.CodeNotFound)
		if tc.other != nil && tc.nonexistent != nil {
			if a, b := errMessage(tc.other), errMessage(tc.nonexistent); strings.ReplaceAll(strings.ReplaceAll(a, acmeSA, missing), instanceAdmin, missing) != b {
				t.Errorf("%s: another organization's principal says %q, a missing one %q; want the same answer", tc.name, a, b)
			}
		}
	}
}

// errMessage is a Connect error's message without its code.
func errMessage(err error) string {
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce.Message()
	}
	return err.Error()
}

// TestOrgAdminBindsNoClientToInstanceAdmin (docs/security.md A-42): a
// client's client_credentials tokens are its service account's. An
// instance administrator can be a service account (its stored flag or
// the instance_admins setting); an organization administrator that
// created a client bound to one, with scope sts:admin, would hold its
// secret and get that instance administrator's sts:admin token. Binding a
// client to a principal the caller may not act as is permission_denied,
// and a client the instance role bound to an instance administrator
// stays the instance role's: an organization administrator reads it but
// neither widens, disables, rotates (a new secret is handed over) nor
// deletes it. The refused calls change nothing and the stored secret
// keeps working; the organization administrator keeps every call for a
// client of an ordinary service account.
func TestOrgAdminBindsNoClientToInstanceAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL).client
	ctx := t.Context()
	acmeAdmin := e.orgAdmin(t, e.org.ID, "acme-admin")
	flagged, configured, ordinary := e.serviceAccount("root-bot"), e.serviceAccount("ops-bot"), e.serviceAccount("ci")
	if err := e.store.UpdatePrincipal(ctx, flagged.ID, func(p storage.Principal) (storage.Principal, error) {
		p.InstanceAdmin = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	e.h.InstanceAdmins = []string{configured.ID}
	cc := []string{oauth2.GrantTypeClientCredentials}
	admin := []string{pat.ScopeFull, pat.ScopeAdmin}

	root, err := c.CreateClient(as(e.admin), &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: flagged.ID,
		Name: "root", GrantTypes: cc, Scopes: admin})
	if err != nil {
		t.Fatalf("instance admin binds a client to an instance admin: %v", err)
	}
	rootID, rootSec := root.GetClient().GetId(), root.GetClientSecret()
	counts := func() [2]int {
		t.Helper()
		evs, err := e.store.ListAudit(ctx, storage.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return [2]int{e.clientCount(), len(evs)}
	}
	before := counts()
	rootBefore, err := e.store.GetClient(ctx, rootID)
	if err != nil {
		t.Fatal(err)
	}

	disabled := true
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateClient bound to the flagged instance admin", func() error {
			_, err := c.CreateClient(as(acmeAdmin), &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: flagged.ID,
				GrantTypes: cc, Scopes: admin})
			return err
		}},
		{"CreateClient bound to the configured instance admin", func() error {
			_, err := c.CreateClient(as(acmeAdmin), &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: configured.ID,
				GrantTypes: cc, Scopes: admin})
			return err
		}},
		{"UpdateClient adding a scope to the instance admin's client", func() error {
			_, err := c.UpdateClient(as(acmeAdmin), &stsv1.UpdateClientRequest{ClientId: rootID,
				Scopes: &stsv1.StringList{Values: []string{pat.ScopeFull, pat.ScopeAdmin, "extra"}}})
			return err
		}},
		{"UpdateClient disabling the instance admin's client", func() error {
			_, err := c.UpdateClient(as(acmeAdmin), &stsv1.UpdateClientRequest{ClientId: rootID, Disabled: &disabled})
			return err
		}},
		{"RotateClientSecret of the instance admin's client", func() error {
			_, err := c.RotateClientSecret(as(acmeAdmin), &stsv1.RotateClientSecretRequest{ClientId: rootID})
			return err
		}},
		{"DeleteClient of the instance admin's client", func() error {
			_, err := c.DeleteClient(as(acmeAdmin), &stsv1.DeleteClientRequest{ClientId: rootID})
			return err
		}},
	}
	for _, tc := range calls {
		wantCode(t, tc.name, tc.call(), connect.CodePermissionDenied)
	}
	if got := counts(); got != before {
		t.Errorf("clients, audit events after the refused calls = %v, want %v", got, before)
	}
	got, err := e.store.GetClient(ctx, rootID)
	if err != nil || !got.UpdatedAt.Equal(rootBefore.UpdatedAt) || !slices.Equal(got.Scopes, rootBefore.Scopes) || got.Disabled ||
		!slices.Equal(got.SecretDigest, rootBefore.SecretDigest) {
		t.Errorf("the instance admin's client after the refused calls: %+v, %v; want it unchanged", got, err)
	}
	if !e.authenticates(rootID, rootSec) {
		t.Error("the instance admin's client secret stopped working after the refused calls")
	}

	// The organization administrator still reads the instance admin's
	// client.
	if _, err := c.GetClient(as(acmeAdmin), &stsv1.GetClientRequest{ClientId: rootID}); err != nil {
		t.Errorf("org admin reads the instance admin's client: %v", err)
	}
	if l, err := c.ListClients(as(acmeAdmin), &stsv1.ListClientsRequest{}); err != nil || len(l.GetClients()) != 1 {
		t.Errorf("org admin lists clients = %v, %v; want the instance admin's one", l, err)
	}

	// It manages the clients of an ordinary service account in full.
	own, err := c.CreateClient(as(acmeAdmin), &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: ordinary.ID,
		GrantTypes: cc, Scopes: admin})
	if err != nil {
		t.Fatalf("org admin binds a client to an ordinary service account: %v", err)
	}
	ownID := own.GetClient().GetId()
	if _, err := c.UpdateClient(as(acmeAdmin), &stsv1.UpdateClientRequest{ClientId: ownID, Disabled: &disabled}); err != nil {
		t.Errorf("org admin updates its client: %v", err)
	}
	if _, err := c.RotateClientSecret(as(acmeAdmin), &stsv1.RotateClientSecretRequest{ClientId: ownID}); err != nil {
		t.Errorf("org admin rotates its client's secret: %v", err)
	}
	if _, err := c.DeleteClient(as(acmeAdmin), &stsv1.DeleteClientRequest{ClientId: ownID}); err != nil {
		t.Errorf("org admin deletes its client: %v", err)
	}

	// The instance role binds and manages clients of instance admins.
	if _, err := c.CreateClient(as(e.admin), &stsv1.CreateClientRequest{OrganizationId: e.org.ID, PrincipalId: configured.ID,
		GrantTypes: cc, Scopes: admin}); err != nil {
		t.Errorf("instance admin binds a client to the configured instance admin: %v", err)
	}
	if _, err := c.UpdateClient(as(e.admin), &stsv1.UpdateClientRequest{ClientId: rootID, Disabled: &disabled}); err != nil {
		t.Errorf("instance admin updates the instance admin's client: %v", err)
	}
	if _, err := c.RotateClientSecret(as(e.admin), &stsv1.RotateClientSecretRequest{ClientId: rootID}); err != nil {
		t.Errorf("instance admin rotates the instance admin's client's secret: %v", err)
	}
	if _, err := c.DeleteClient(as(e.admin), &stsv1.DeleteClientRequest{ClientId: rootID}); err != nil {
		t.Errorf("instance admin deletes the instance admin's client: %v", err)
	}
}

// evilAdmin creates the organization "evil" and its administrator
// mallory, and returns the organization and a context carrying mallory's
// `* sts:admin` PAT.
func (e *env) evilAdmin(t *testing.T) (storage.Organization, context.Context) {
	t.Helper()
	now := time.Now()
	org, err := CreateOrganization(t.Context(), e.store, testCaller, "evil", "free", now)
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := CreatePrincipal(t.Context(), e.store, testCaller, org.ID, storage.PrincipalUser, "mallory", "", now)
	if err != nil {
		t.Fatal(err)
	}
	return org, as(e.mintPAT(mallory.ID, pat.ScopeFull, pat.ScopeAdmin))
}
