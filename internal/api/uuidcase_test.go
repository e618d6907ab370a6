package api

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/tokens"
)

// TestGitpodUUIDCase: Gitpod's user and token IDs are UUIDs, and a UUID
// is the same value whatever the case of its hex digits, so an upper-case
// ID a client sends names the same user or token as the lower-case one sts
// hands out, over every protocol of the vendor's generated client: the
// caller itself is not "another user", an administrator finds the user,
// and the rule that no one suspends or deletes themselves holds whatever
// the case (docs/security.md T-210).
func TestGitpodUUIDCase(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, e *env) { gitpodUUIDCase(t, e) })
}

func gitpodUUIDCase(t *testing.T, e *env) {
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
				t.Errorf("CreatePersonalAccessToken for oneself in upper case = %v, %v", cr, err)
				return // what follows acts on the token it creates
			}
			patID := cr.GetPersonalAccessToken().GetId()
			if u, err := c.user.UpdatePersonalAccessToken(as(alice.secret), &gitpodv1.UpdatePersonalAccessTokenRequest{
				PersonalAccessTokenId: up(patID), Description: new("renamed"),
			}); err != nil || u.GetPersonalAccessToken().GetId() != patID || u.GetPersonalAccessToken().GetDescription() != "renamed" {
				t.Errorf("UpdatePersonalAccessToken in upper case = %v, %v", u, err)
			}
			if rg, err := c.user.RegeneratePersonalAccessToken(as(alice.secret), &gitpodv1.RegeneratePersonalAccessTokenRequest{
				PersonalAccessTokenId: up(patID), ValidFor: durationpb.New(72 * time.Hour),
			}); err != nil || rg.GetToken() == "" || rg.GetToken() == cr.GetToken() || rg.GetPersonalAccessToken().GetId() != patID {
				t.Errorf("RegeneratePersonalAccessToken in upper case = %v, %v", rg, err)
			}
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
			// An ID that only looks like one is no UUID: invalid_argument,
			// as Gitpod answers it (docs/security.md F-106).
			_, err = c.user.GetUser(as(admin.secret), &gitpodv1.GetUserRequest{UserId: up(alice.ID) + "0"})
			wantCode(t, "GetUser of a non-UUID", err, connect.CodeInvalidArgument)
		})
	}
}

// TestAdminAPIUUIDCase: sts.v1's PrincipalService takes a principal ID in
// upper case as the Gitpod UserService does, by the same rule (an ID in
// UUID form names the same principal in any case): the two APIs of one
// server agree on what names a principal, and DeletePrincipal's rule that
// no one deletes themselves holds whatever the case (docs/security.md
// T-210).
func TestAdminAPIUUIDCase(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, e *env) {
		up := strings.ToUpper(e.user.ID)
		g := gitpodv1connect.NewUserServiceClient(e.srv.Client(), e.srv.URL)
		if _, err := g.GetUser(as(e.admin), &gitpodv1.GetUserRequest{UserId: up}); err != nil {
			t.Errorf("gitpod GetUser(upper): %v", err)
		}
		p := stsv1connect.NewPrincipalServiceClient(e.srv.Client(), e.srv.URL)
		if r, err := p.GetPrincipal(as(e.admin), &stsv1.GetPrincipalRequest{PrincipalId: up}); err != nil || r.GetPrincipal().GetId() != e.user.ID {
			t.Errorf("sts.v1 GetPrincipal(upper) = %v, %v, while gitpod GetUser(upper) finds the user", r, err)
		}
		if _, err := p.SetPrincipalDisabled(as(e.admin), &stsv1.SetPrincipalDisabledRequest{PrincipalId: up, Disabled: true}); err != nil {
			t.Errorf("SetPrincipalDisabled(upper): %v", err)
		} else if got, err := e.store.GetPrincipal(t.Context(), e.user.ID); err != nil || !got.Disabled {
			t.Errorf("SetPrincipalDisabled(upper) answered OK, the principal is %+v, %v", got, err)
		}
		adm := e.newPerson(t, e.org.ID, "adm", pat.ScopeFull, pat.ScopeAdmin)
		_, err := p.DeletePrincipal(as(adm.secret), &stsv1.DeletePrincipalRequest{PrincipalId: strings.ToUpper(adm.ID)})
		wantCode(t, "DeletePrincipal of oneself in upper case", err, connect.CodeInvalidArgument)
		_, err = p.GetPrincipal(as(e.admin), &stsv1.GetPrincipalRequest{PrincipalId: up + "0"})
		wantCode(t, "GetPrincipal of a non-UUID", err, connect.CodeNotFound)
	})
}

// TestRevokeSubjectUUIDCase: RevokeSubject with a principal's ID in upper
// case answered OK and revoked nothing: the row was "sub:<UPPER>", which no
// token of the principal (its sub is the lower-case ID) matches. A subject
// in UUID form that names no principal but whose lower-case form names one
// is taken as that principal; any other subject (a pool's subjects are
// case-sensitive strings) is revoked as sent (docs/security.md T-210).
func TestRevokeSubjectUUIDCase(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, e *env) {
		c := stsv1connect.NewRevocationServiceClient(e.srv.Client(), e.srv.URL)
		up := strings.ToUpper(e.user.ID)
		if _, err := c.RevokeSubject(as(e.admin), &stsv1.RevokeSubjectRequest{Subject: up}); err != nil {
			t.Errorf("RevokeSubject(upper): %v", err)
		}
		if revs, err := e.store.GetRevocations(t.Context(), tokens.RevocationIDSubject(e.user.ID)); err != nil || len(revs) == 0 {
			t.Errorf("RevokeSubject(%s) answered OK, but no revocation covers the user's tokens (sub %s): %v", up, e.user.ID, err)
		}
		// A UUID-shaped subject of no principal, as a pool may map one, is
		// a case-sensitive string: revoked as sent.
		const foreign = "ABCDEF01-2345-6789-ABCD-EF0123456789"
		if _, err := c.RevokeSubject(as(e.admin), &stsv1.RevokeSubjectRequest{Subject: foreign}); err != nil {
			t.Errorf("RevokeSubject(foreign): %v", err)
		}
		if revs, err := e.store.GetRevocations(t.Context(), tokens.RevocationIDSubject(foreign)); err != nil || len(revs) == 0 {
			t.Errorf("RevokeSubject(%s) of no principal was not revoked as sent: %v", foreign, err)
		}
	})
}
