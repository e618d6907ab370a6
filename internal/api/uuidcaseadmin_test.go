package api

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestAdminAPIOrgClientUUIDCase (docs/security.md T-215): the sts.v1
// organization, client, principal and runner IDs of every request are
// UUIDs, and one sent in upper case names the same record, as T-210's
// rule has it for principals: organization and client IDs were compared
// and looked up as text, so acme's administrator got not_found for its
// own organization and clients, an instance administrator's ListPrincipals
// of acme in upper case answered an empty list, and CreateClient with a
// principal in upper case was not_found. Another organization's record
// stays not_found in any case.
func TestAdminAPIOrgClientUUIDCase(t *testing.T) {
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			adminUUIDCase(t, newEnvOn(t, store, func(h *Handler) { h.Audit = store }))
		})
	}
}

func adminUUIDCase(t *testing.T, e *env) {
	up := strings.ToUpper
	c := e.clients(e.srv.URL)
	audits := stsv1connect.NewAuditServiceClient(e.srv.Client(), e.srv.URL)
	adm := e.newPerson(t, e.org.ID, "acme-adm", pat.ScopeFull, pat.ScopeAdmin)
	sa := e.serviceAccount("ci")
	ctx := as(adm.secret)

	cr, err := c.client.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: up(e.org.ID), PrincipalId: up(sa.ID),
		GrantTypes: []string{oauth2.GrantTypeClientCredentials}})
	if err != nil {
		t.Fatalf("CreateClient with organization and principal in upper case: %v", err)
	}
	cl := cr.GetClient()
	if cl.GetOrganizationId() != e.org.ID || cl.GetPrincipalId() != sa.ID {
		t.Errorf("CreateClient stored organization %q, principal %q; want %q, %q", cl.GetOrganizationId(), cl.GetPrincipalId(), e.org.ID, sa.ID)
	}
	if g, err := c.org.GetOrganization(ctx, &stsv1.GetOrganizationRequest{OrganizationId: up(e.org.ID)}); err != nil || g.GetOrganization().GetId() != e.org.ID {
		t.Errorf("GetOrganization(upper) of its own organization = %v, %v", g, err)
	}
	if g, err := c.client.GetClient(ctx, &stsv1.GetClientRequest{ClientId: up(cl.GetId())}); err != nil || g.GetClient().GetId() != cl.GetId() {
		t.Errorf("GetClient(upper) = %v, %v", g, err)
	}
	if l, err := c.client.ListClients(ctx, &stsv1.ListClientsRequest{OrganizationId: up(e.org.ID)}); err != nil || len(l.GetClients()) != 1 {
		t.Errorf("ListClients(upper) = %d clients, %v; want 1", len(l.GetClients()), err)
	}
	n := "renamed"
	if _, err := c.client.UpdateClient(ctx, &stsv1.UpdateClientRequest{ClientId: up(cl.GetId()), Name: &n}); err != nil {
		t.Errorf("UpdateClient(upper): %v", err)
	}
	if _, err := c.client.RotateClientSecret(ctx, &stsv1.RotateClientSecretRequest{ClientId: up(cl.GetId())}); err != nil {
		t.Errorf("RotateClientSecret(upper): %v", err)
	}
	if _, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{OrganizationId: up(e.org.ID)}); err != nil {
		t.Errorf("ListAuditEvents(upper): %v", err)
	}
	p, err := c.principal.CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{OrganizationId: up(e.org.ID), Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "bo"})
	if err != nil || p.GetPrincipal().GetOrganizationId() != e.org.ID {
		t.Errorf("CreatePrincipal(upper organization) = %v, %v", p, err)
	}
	// The instance role lists acme's principals in upper case: not
	// an empty list.
	if l, err := c.principal.ListPrincipals(as(e.admin), &stsv1.ListPrincipalsRequest{OrganizationId: up(e.org.ID)}); err != nil || len(l.GetPrincipals()) == 0 {
		t.Errorf("instance ListPrincipals(upper) = %d principals, %v", len(l.GetPrincipals()), err)
	}

	// Another organization's administrator: acme's records stay
	// missing, in any case.
	other, err := CreateOrganization(t.Context(), e.store, testCaller, "evil", "free", e.org.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	evil := as(e.newPerson(t, other.ID, "evil-adm", pat.ScopeFull, pat.ScopeAdmin).secret)
	_, err = c.client.GetClient(evil, &stsv1.GetClientRequest{ClientId: up(cl.GetId())})
	wantCode(t, "another organization's GetClient(upper)", err, connect.CodeNotFound)
	_, err = c.org.GetOrganization(evil, &stsv1.GetOrganizationRequest{OrganizationId: up(e.org.ID)})
	wantCode(t, "another organization's GetOrganization(upper)", err, connect.CodeNotFound)
	_, err = c.client.ListClients(evil, &stsv1.ListClientsRequest{OrganizationId: up(e.org.ID)})
	wantCode(t, "another organization's ListClients(upper)", err, connect.CodeNotFound)
	// Surrounding space is no UUID: taken as sent and not found.
	_, err = c.client.GetClient(ctx, &stsv1.GetClientRequest{ClientId: " " + cl.GetId()})
	wantCode(t, "GetClient(space)", err, connect.CodeNotFound)
}
