package api

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestDeleteRefusesABoundPrincipal (docs/security.md A-86): a client's
// client_credentials tokens and a pool's exchanged tokens are its bound
// principal's. PrincipalService/DeletePrincipal refused a principal that
// clients were bound to (service accounts only) but not one a pool was
// bound to (any principal, a user too), and UserService/DeleteUser did
// not look: the principal went, and the pool stayed, naming a principal
// that no longer exists, every later exchange refused with nothing
// telling the administrator why. Both deletions now refuse
// (failed_precondition, naming the pool or client) and change nothing:
// the principal is neither disabled nor its PATs deleted.
func TestDeleteRefusesABoundPrincipal(t *testing.T) {
	t.Parallel()
	e := newPoolEnvOn(t, newSQLiteStore(t))
	c := e.clients(e.srv.URL)
	pc := e.poolClient(e.srv.URL)
	for _, tc := range []struct{ bind, del string }{
		{"client", "DeletePrincipal"}, {"pool", "DeletePrincipal"}, {"pool", "DeleteUser"},
	} {
		bind, del := tc.bind, tc.del
		t.Run(bind+"/"+del, func(t *testing.T) {
			kind := storage.PrincipalUser
			if bind == "client" {
				kind = storage.PrincipalServiceAccount // a client's principal is one
			}
			u, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, kind, "bound-"+bind+"-"+del, "", e.h.now())
			if err != nil {
				t.Fatal(err)
			}
			secret := e.mintPAT(u.ID, "*")
			var name string
			switch bind {
			case "client":
				cr, err := c.client.CreateClient(as(e.admin), &stsv1.CreateClientRequest{
					OrganizationId: e.org.ID, PrincipalId: u.ID, Name: "ci",
					GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Scopes: []string{"read"},
				})
				if err != nil {
					t.Fatal(err)
				}
				name = cr.GetClient().GetId()
			case "pool":
				req := e.validPool("bound-" + strings.ToLower(del))
				req.PrincipalId = u.ID
				if _, err := pc.CreatePool(as(e.admin), req); err != nil {
					t.Fatal(err)
				}
				name = req.GetPoolId()
			}
			switch del {
			case "DeletePrincipal":
				_, err = c.principal.DeletePrincipal(as(e.admin), &stsv1.DeletePrincipalRequest{PrincipalId: u.ID})
			case "DeleteUser":
				_, err = c.user.DeleteUser(as(e.admin), &gitpodv1.DeleteUserRequest{UserId: u.ID})
			}
			if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), name) {
				t.Errorf("%s of a principal bound to %s %s: %v; want failed_precondition naming it", del, bind, name, err)
			}
			if err != nil && strings.Contains(err.Error(), "left disabled") {
				t.Errorf("%s refused before anything changed says the principal was left disabled: %v", del, err)
			}
			got, err := e.store.GetPrincipal(t.Context(), u.ID)
			if err != nil || got.Disabled {
				t.Errorf("principal after the refusal = %+v, %v; want it enabled", got, err)
			}
			if _, err := c.identity.GetAuthenticatedIdentity(as(secret), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
				t.Errorf("its PAT after the refusal: %v", err)
			}
		})
	}
}

// TestDeleteBoundRefusalNamesOnlyOwnPools (docs/security.md A-86): the
// trust configuration file may bind a pool of another organization to a
// user of this one. An organization administrator's refused deletion of
// that user named the other organization's pool, which the administrator
// may not even read; it names only the pools of the principal's own
// organization and counts the rest.
func TestDeleteBoundRefusalNamesOnlyOwnPools(t *testing.T) {
	t.Parallel()
	e := newPoolEnvOn(t, newSQLiteStore(t))
	c := e.clients(e.srv.URL)
	pc := e.poolClient(e.srv.URL)
	evilOrg, _ := e.evilAdmin(t)
	acme := as(e.orgAdmin(t, e.org.ID, "acme-admin"))
	u, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, storage.PrincipalUser, "shared", "", e.h.now())
	if err != nil {
		t.Fatal(err)
	}
	// As the trust file would: a pool of the other organization acting as
	// the user.
	theirs := "evil-secret-pool"
	req := e.validPool(theirs)
	if _, err := pc.CreatePool(as(e.admin), req); err != nil {
		t.Fatal(err)
	}
	if err := e.store.UpdatePool(t.Context(), theirs, func(p storage.Pool) (storage.Pool, error) {
		p.OrgID, p.PrincipalID = evilOrg.ID, u.ID
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ own, want string }{
		{"", "1 pool of another organization"},
		{"acme-bound", "pools acme-bound and 1 pool of another organization"},
	} {
		if step.own != "" {
			req := e.validPool(step.own)
			req.PrincipalId = u.ID
			if _, err := pc.CreatePool(as(e.admin), req); err != nil {
				t.Fatal(err)
			}
		}
		for name, del := range map[string]func() error{
			"DeletePrincipal": func() error {
				_, err := c.principal.DeletePrincipal(acme, &stsv1.DeletePrincipalRequest{PrincipalId: u.ID})
				return err
			},
			"DeleteUser": func() error {
				_, err := c.user.DeleteUser(acme, &gitpodv1.DeleteUserRequest{UserId: u.ID})
				return err
			},
		} {
			err := del()
			if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), step.want) {
				t.Errorf("%s of a user bound to pools (own %q): %v; want failed_precondition saying %q", name, step.own, err, step.want)
			}
			if err != nil && strings.Contains(err.Error(), theirs) {
				t.Errorf("%s's refusal names the other organization's pool: %v", name, err)
			}
		}
	}
	if _, err := e.store.GetPrincipal(t.Context(), u.ID); err != nil {
		t.Errorf("principal after the refusals: %v", err)
	}
}
