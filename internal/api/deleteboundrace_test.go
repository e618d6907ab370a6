package api

import (
	"context"
	"sync"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
)

// bindingStore runs then once, right after the deletion's early look for
// the pools bound to principal (refuseBound's ListPoolsOfPrincipal)
// returns: another administrator's call binds a pool in between.
type bindingStore struct {
	storage.Store
	mu        sync.Mutex
	principal string
	then      func()
}

func (s *bindingStore) arm(principal string, then func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.principal, s.then = principal, then
}

func (s *bindingStore) ListPoolsOfPrincipal(ctx context.Context, id string) ([]storage.Pool, error) {
	ps, err := s.Store.ListPoolsOfPrincipal(ctx, id)
	s.mu.Lock()
	then := s.then
	if id != s.principal {
		then = nil
	} else {
		s.then = nil
	}
	s.mu.Unlock()
	if then != nil {
		then()
	}
	return ps, err
}

// TestDeleteRechecksBindingsInItsUnitOfWork (docs/security.md A-86): a
// principal's deletion looked for the clients and pools bound to it
// before, and outside, the unit of work that deletes it; a pool bound
// in between (another call committing after the look) was left naming a
// principal that no longer exists, every exchange through it refused.
// The deletion looks again in its unit of work, after the principal's
// row is taken, and is refused (failed_precondition): the principal and
// the pool stay, on SQLite and PostgreSQL, through
// PrincipalService/DeletePrincipal and UserService/DeleteUser.
func TestDeleteRechecksBindingsInItsUnitOfWork(t *testing.T) {
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			bs := &bindingStore{Store: open(t)}
			e := newPoolEnvOn(t, bs)
			c := e.clients(e.srv.URL)
			for _, del := range []string{"DeletePrincipal", "DeleteUser"} {
				t.Run(del, func(t *testing.T) {
					u, err := CreatePrincipal(t.Context(), bs.Store, testCaller, e.org.ID, storage.PrincipalUser, "late-"+del, "", e.h.now())
					if err != nil {
						t.Fatal(err)
					}
					pool := "late-" + storage.NewID()[:8]
					bs.arm(u.ID, func() {
						if err := bs.Store.CreatePool(context.Background(), storage.Pool{
							ID: pool, OrgID: e.org.ID, PrincipalID: u.ID, DisplayName: "late",
							Condition: "true", Scopes: []string{"read"},
						}); err != nil {
							t.Error(err)
						}
					})
					switch del {
					case "DeletePrincipal":
						_, err = c.principal.DeletePrincipal(as(e.admin), &stsv1.DeletePrincipalRequest{PrincipalId: u.ID})
					default:
						_, err = c.user.DeleteUser(as(e.admin), &gitpodv1.DeleteUserRequest{UserId: u.ID})
					}
					wantCode(t, del+" with a pool bound meanwhile", err, connect.CodeFailedPrecondition)
					if _, err := bs.Store.GetPrincipal(t.Context(), u.ID); err != nil {
						t.Errorf("principal after the refused %s: %v; want it kept, as the pool %s names it", del, err, pool)
					}
					if p, err := bs.Store.GetPool(t.Context(), pool); err != nil || p.PrincipalID != u.ID {
						t.Errorf("pool after the refused %s: %+v, %v", del, p, err)
					}
				})
			}
		})
	}
}
