package api

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestPATBelongsToItsOwnerNotItsMinter pins docs/authorization.md
// ("A PAT belongs to its owner, not to whoever minted it"): a PAT an
// organization administrator created for another user acts as that user,
// with its scopes (sts:admin included), after the administrator who made
// it is deleted; the owner regenerating it with itself ends the copy the
// minter saw, and the new secret works.
func TestPATBelongsToItsOwnerNotItsMinter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL)
	minter := e.orgAdmin(t, e.org.ID, "leaving-admin")
	bob, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, storage.PrincipalUser, "bob", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	month := durationpb.New(30 * 24 * time.Hour)
	cr, err := c.user.CreatePersonalAccessToken(as(minter), &gitpodv1.CreatePersonalAccessTokenRequest{
		UserId: bob.ID, Description: "for bob", ValidFor: month, Scopes: []string{pat.ScopeFull, pat.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	seen := cr.GetToken()
	m := e.principalNamed(t, "leaving-admin")
	if _, err := c.principal.DeletePrincipal(as(e.admin), &stsv1.DeletePrincipalRequest{PrincipalId: m.ID}); err != nil {
		t.Fatal(err)
	}
	id, err := c.identity.GetAuthenticatedIdentity(as(seen), &gitpodv1.GetAuthenticatedIdentityRequest{})
	if err != nil || id.GetSubject().GetId() != bob.ID {
		t.Fatalf("bob's PAT after its minter's deletion: %v, %v; want bob", id, err)
	}
	if _, err := c.principal.ListPrincipals(as(seen), &stsv1.ListPrincipalsRequest{OrganizationId: e.org.ID}); err != nil {
		t.Errorf("bob's sts:admin PAT after its minter's deletion: %v", err)
	}
	rr, err := c.user.RegeneratePersonalAccessToken(as(seen), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: cr.GetPersonalAccessToken().GetId(), ValidFor: month})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.identity.GetAuthenticatedIdentity(as(seen), &gitpodv1.GetAuthenticatedIdentityRequest{})
	wantCode(t, "the secret the minter saw, after bob regenerated it", err, connect.CodeUnauthenticated)
	if _, err := c.identity.GetAuthenticatedIdentity(as(rr.GetToken()), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
		t.Errorf("bob's regenerated PAT: %v", err)
	}
}
