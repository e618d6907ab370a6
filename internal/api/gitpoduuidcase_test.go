package api

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
)

// TestGitpodUUIDCase: Gitpod's user and token IDs are UUIDs, and a UUID
// is the same value whatever the case of its hex digits, so an upper-case
// ID a client sends names the same user or token as the lower-case one sts
// hands out, over every protocol of the vendor's generated client: the
// caller itself is not "another user", an administrator finds the user,
// and the rule that no one suspends or deletes themselves holds whatever
// the case (docs/security.md T-216).
func TestGitpodUUIDCase(t *testing.T) {
	e := newEnv(t, nil)
	up := strings.ToUpper
	for name, c := range e.gitpodProtocols(t) {
		t.Run(name, func(t *testing.T) {
			admin := e.newPerson(t, e.org.ID, "adm-"+name, pat.ScopeFull, pat.ScopeAdmin)
			alice := e.newPerson(t, e.org.ID, "alice-"+name, pat.ScopeFull)
			bob := e.newPerson(t, e.org.ID, "bob-"+name, pat.ScopeFull)

			if g, err := c.user.GetUser(as(alice.secret), &gitpodv1.GetUserRequest{UserId: up(alice.ID)}); err != nil || g.GetUser().GetId() != alice.ID {
				t.Errorf("GetUser of oneself in upper case = %v, %v", g, err)
			}
			if g, err := c.user.GetUser(as(admin.secret), &gitpodv1.GetUserRequest{UserId: up(alice.ID)}); err != nil || g.GetUser().GetId() != alice.ID {
				t.Errorf("GetUser by an administrator in upper case = %v, %v", g, err)
			}
			// Another user stays another user in any case.
			_, err := c.user.GetUser(as(alice.secret), &gitpodv1.GetUserRequest{UserId: up(bob.ID)})
			wantCode(t, "GetUser of another user in upper case by a non-admin", err, connect.CodePermissionDenied)
			_, err = c.user.SetSuspended(as(admin.secret), &gitpodv1.SetSuspendedRequest{UserId: up(admin.ID), Suspended: true})
			wantCode(t, "SetSuspended of oneself in upper case", err, connect.CodeInvalidArgument)
			_, err = c.user.DeleteUser(as(admin.secret), &gitpodv1.DeleteUserRequest{UserId: up(admin.ID)})
			wantCode(t, "DeleteUser of oneself in upper case", err, connect.CodeInvalidArgument)
			if _, err := c.user.SetSuspended(as(admin.secret), &gitpodv1.SetSuspendedRequest{UserId: up(bob.ID), Suspended: false}); err != nil {
				t.Errorf("SetSuspended of a managed user in upper case: %v", err)
			}

			cr, err := c.user.CreatePersonalAccessToken(as(alice.secret), &gitpodv1.CreatePersonalAccessTokenRequest{UserId: up(alice.ID), ValidFor: durationpb.New(48 * time.Hour)})
			if err != nil || cr.GetPersonalAccessToken().GetUserId() != alice.ID {
				t.Fatalf("CreatePersonalAccessToken for oneself in upper case = %v, %v", cr, err)
			}
			patID := cr.GetPersonalAccessToken().GetId()
			l, err := c.user.ListPersonalAccessTokens(as(alice.secret), &gitpodv1.ListPersonalAccessTokensRequest{
				Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{up(alice.ID)}},
			})
			if err != nil || len(l.GetPersonalAccessTokens()) != 2 {
				t.Errorf("ListPersonalAccessTokens of oneself in upper case = %d tokens, %v", len(l.GetPersonalAccessTokens()), err)
			}
			if g, err := c.user.GetPersonalAccessToken(as(alice.secret), &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: up(patID)}); err != nil || g.GetPat().GetId() != patID {
				t.Errorf("GetPersonalAccessToken in upper case = %v, %v", g, err)
			}
			if _, err := c.user.DeletePersonalAccessToken(as(alice.secret), &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: up(patID)}); err != nil {
				t.Errorf("DeletePersonalAccessToken in upper case: %v", err)
			}
			_, err = c.user.GetPersonalAccessToken(as(alice.secret), &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: patID})
			wantCode(t, "GetPersonalAccessToken after the upper-case delete", err, connect.CodeNotFound)
			// An ID that only looks like one is still not found.
			_, err = c.user.GetUser(as(admin.secret), &gitpodv1.GetUserRequest{UserId: up(alice.ID) + "0"})
			wantCode(t, "GetUser of a non-UUID", err, connect.CodeNotFound)
		})
	}
}
