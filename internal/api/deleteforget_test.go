package api

import (
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestDeleteStopsCachedPATsAtOnce: deleting a user disables it first, so
// that nothing it holds works while the rest goes (docs/security.md
// Its PATs' cached checks, which hold the owner as it was, are
// dropped with the disable (pat.Service.ForgetOwner), as SetSuspended
// does: when deleting the PATs then fails (here a trigger refuses, as a
// storage fault would), the call fails and the still-stored PAT of the
// now disabled user no longer authenticates on this replica. Before,
// DeleteUser never dropped them and DeletePrincipal only on success, so
// the PAT went on working for the cache TTL.
func TestDeleteStopsCachedPATsAtOnce(t *testing.T) {
	t.Parallel()
	for name, del := range map[string]func(e *env, c clients) error{
		"DeleteUser": func(e *env, c clients) error {
			_, err := c.user.DeleteUser(as(e.admin), &gitpodv1.DeleteUserRequest{UserId: e.user.ID})
			return err
		},
		"DeletePrincipal": func(e *env, c clients) error {
			_, err := c.principal.DeletePrincipal(as(e.admin), &stsv1.DeletePrincipalRequest{PrincipalId: e.user.ID})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.clients(e.srv.URL)
			// Two PATs: a failed deletion drops its own PAT's cached check,
			// and the deletions stop at the first failure.
			secrets := []string{e.secret, e.mintPAT(e.user.ID, pat.ScopeFull)}
			for _, s := range secrets {
				if _, err := c.user.GetAuthenticatedUser(as(s), &gitpodv1.GetAuthenticatedUserRequest{}); err != nil {
					t.Fatalf("the user's PAT before: %v", err) // now cached
				}
			}
			if _, err := e.store.(*sqlstore.Store).DB().ExecContext(t.Context(),
				`CREATE TRIGGER pats_fail BEFORE DELETE ON pats BEGIN SELECT RAISE(ABORT, 'storage fault'); END`); err != nil {
				t.Fatal(err)
			}
			if err := del(e, c); err == nil {
				t.Fatalf("%s with PAT deletion failing succeeded", name)
			}
			for i, s := range secrets {
				_, err := c.user.GetAuthenticatedUser(as(s), &gitpodv1.GetAuthenticatedUserRequest{})
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("the disabled user's PAT %d after a failed %s: %v, want unauthenticated", i, name, err)
				}
			}
		})
	}
}
