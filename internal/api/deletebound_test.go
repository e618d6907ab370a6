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
