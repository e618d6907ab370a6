package api

import (
	"context"
	"strings"
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
	t.Parallel()
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
					// The refusal says what was already done (docs/api.md).
					if err == nil || !strings.Contains(err.Error(), "left disabled") {
						t.Errorf("%s refused after it disabled the principal: %v; want it to say the principal was left disabled", del, err)
					}
					if got, err := bs.Store.GetPrincipal(t.Context(), u.ID); err != nil || !got.Disabled {
						t.Errorf("principal after the refused %s: %+v, %v; want it kept (disabled), as the pool %s names it", del, got, err, pool)
					}
					if p, err := bs.Store.GetPool(t.Context(), pool); err != nil || p.PrincipalID != u.ID {
						t.Errorf("pool after the refused %s: %+v, %v", del, p, err)
					}
				})
			}
		})
	}
}

// principalReadStore runs then on the nth read of principal
// (GetPrincipal), once: the nth of a rebinding's checks before its unit
// of work.
type principalReadStore struct {
	storage.Store
	mu        sync.Mutex
	principal string
	n         int
	then      func()
}

func (s *principalReadStore) arm(principal string, n int, then func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.principal, s.n, s.then = principal, n, then
}

func (s *principalReadStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := s.Store.GetPrincipal(ctx, id)
	s.mu.Lock()
	var then func()
	if id == s.principal && s.then != nil {
		if s.n--; s.n == 0 {
			then, s.then = s.then, nil
		}
	}
	s.mu.Unlock()
	if then != nil {
		then()
	}
	return p, err
}

// TestRebindRacingPrincipalDeletion (docs/security.md A-86): UpdatePool
// rebinding a pool to a principal checked the principal before its unit
// of work and then only wrote the pool's row, so a deletion of that
// principal committing in between (after its own second look found
// nothing bound) left the pool naming a principal that is gone. The
// rebinding holds the principal in its unit of work and checks it again:
// the deletion went first, so the rebinding is refused (not_found) and
// the pool keeps its principal, on SQLite and PostgreSQL.
func TestRebindRacingPrincipalDeletion(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			rs := &principalReadStore{Store: open(t)}
			e := newPoolEnvOn(t, rs)
			c := e.clients(e.srv.URL)
			pc := e.poolClient(e.srv.URL)
			holder, err := CreatePrincipal(t.Context(), rs.Store, testCaller, e.org.ID, storage.PrincipalUser, "holder", "", e.h.now())
			if err != nil {
				t.Fatal(err)
			}
			u, err := CreatePrincipal(t.Context(), rs.Store, testCaller, e.org.ID, storage.PrincipalUser, "doomed", "", e.h.now())
			if err != nil {
				t.Fatal(err)
			}
			req := e.validPool("rebind")
			req.PrincipalId = holder.ID
			if _, err := pc.CreatePool(as(e.admin), req); err != nil {
				t.Fatal(err)
			}
			var delErr error
			// The 2nd read of u is pools' checkPoolRefs, the last before
			// the unit of work (the 1st is the API's own check).
			rs.arm(u.ID, 2, func() {
				_, delErr = c.principal.DeletePrincipal(as(e.admin), &stsv1.DeletePrincipalRequest{PrincipalId: u.ID})
			})
			_, err = pc.UpdatePool(as(e.admin), &stsv1.UpdatePoolRequest{PoolId: req.GetPoolId(), PrincipalId: &u.ID})
			if delErr != nil {
				t.Fatalf("DeletePrincipal between the rebinding's checks and its write: %v", delErr)
			}
			wantCode(t, "UpdatePool to a principal deleted meanwhile", err, connect.CodeNotFound)
			if _, err := rs.Store.GetPrincipal(t.Context(), u.ID); err == nil {
				t.Fatalf("principal %s still exists: the deletion did not run between the checks and the write", u.ID)
			}
			if p, err := rs.Store.GetPool(t.Context(), req.GetPoolId()); err != nil || p.PrincipalID != holder.ID {
				t.Errorf("pool after the refused rebinding: principal %q, %v; want %q (the deleted one is %q)", p.PrincipalID, err, holder.ID, u.ID)
			}
		})
	}
}
