package api

import (
	"context"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
)

// racingStore is a store whose next read of one pool, once armed, runs
// a change of someone else right after the read: the caller goes on
// with what it read, as when another administrator's call commits
// between its authorization and its write.
type racingStore struct {
	storage.Store
	mu   sync.Mutex
	pool string
	then func()
}

func (s *racingStore) arm(pool string, then func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pool, s.then = pool, then
}

func (s *racingStore) GetPool(ctx context.Context, id string) (storage.Pool, error) {
	p, err := s.Store.GetPool(ctx, id)
	s.mu.Lock()
	then := s.then
	if id != s.pool {
		then = nil
	}
	if then != nil {
		s.then = nil
	}
	s.mu.Unlock()
	if then != nil {
		then()
	}
	return p, err
}

// TestPoolChangeRechecksThePoolItWrites (docs/security.md A-85): a
// PoolService change is authorized on the pool as one read finds it and
// written by ID. When, between the two, the pool leaves the caller's
// organization (an instance administrator moves it; or it is deleted and
// another organization takes its name) or is bound to a principal the
// caller may not act as (an instance administrator), an organization
// administrator's stale call must not land on it: with a provider of its
// own in another organization's pool it would obtain that organization's
// tokens. Each change is refused and the pool and its providers are as
// the other call left them, on SQLite and PostgreSQL.
func TestPoolChangeRechecksThePoolItWrites(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			rs := &racingStore{Store: open(t)}
			e := newPoolEnvOn(t, rs)
			evilOrg, _ := e.evilAdmin(t)
			acme := as(e.orgAdmin(t, e.org.ID, "acme-admin"))
			root := e.principalNamed(t, "admin") // the env's instance administrator
			c := e.poolClient(e.srv.URL)

			moved := func(id string) func() {
				return func() {
					if err := rs.Store.UpdatePool(context.Background(), id, func(p storage.Pool) (storage.Pool, error) {
						p.OrgID = evilOrg.ID
						return p, nil
					}); err != nil {
						t.Error(err)
					}
				}
			}
			bound := func(id string) func() {
				return func() {
					if err := rs.Store.UpdatePool(context.Background(), id, func(p storage.Pool) (storage.Pool, error) {
						p.PrincipalID = root.ID
						return p, nil
					}); err != nil {
						t.Error(err)
					}
				}
			}
			changes := map[string]func(id string) error{
				"UpdatePool": func(id string) error {
					cond := "true"
					_, err := c.UpdatePool(acme, &stsv1.UpdatePoolRequest{PoolId: id, Condition: &cond})
					return err
				},
				"DeletePool": func(id string) error {
					_, err := c.DeletePool(acme, &stsv1.DeletePoolRequest{PoolId: id})
					return err
				},
				"CreateProvider": func(id string) error {
					_, err := c.CreateProvider(acme, e.validProvider(id, "mine"))
					return err
				},
				"UpdateProvider": func(id string) error {
					iss := "https://acme-issuer.example"
					_, err := c.UpdateProvider(acme, &stsv1.UpdateProviderRequest{PoolId: id, ProviderId: "gh", Issuer: &iss})
					return err
				},
				"DeleteProvider": func(id string) error {
					_, err := c.DeleteProvider(acme, &stsv1.DeleteProviderRequest{PoolId: id, ProviderId: "gh"})
					return err
				},
			}
			for rpc, call := range changes {
				for race, tc := range map[string]struct {
					then func(string) func()
					want connect.Code
				}{
					"moved to another organization": {moved, connect.CodeNotFound},
					"bound to an instance admin":    {bound, connect.CodeFailedPrecondition},
				} {
					t.Run(rpc+"/"+race, func(t *testing.T) {
						id := "race-" + storage.NewID()[:8]
						if _, err := c.CreatePool(as(e.admin), e.validPool(id)); err != nil {
							t.Fatal(err)
						}
						if _, err := c.CreateProvider(as(e.admin), e.validProvider(id, "gh")); err != nil {
							t.Fatal(err)
						}
						rs.arm(id, tc.then(id))
						err := call(id)
						wantCode(t, rpc, err, tc.want)
						after, err := rs.Store.GetPool(t.Context(), id)
						if err != nil {
							t.Fatalf("pool after the refused %s: %v", rpc, err)
						}
						if after.Condition != e.validPool(id).Condition {
							t.Errorf("condition = %q after the refused %s", after.Condition, rpc)
						}
						prs, err := rs.Store.ListProviders(t.Context(), id)
						if err != nil {
							t.Fatal(err)
						}
						if len(prs) != 1 || prs[0].ID != "gh" || prs[0].Issuer != poolIssuer {
							var got []string
							for _, p := range prs {
								got = append(got, p.ID+" "+p.Issuer)
							}
							t.Errorf("providers after the refused %s: %q, want only gh trusting %s", rpc, got, poolIssuer)
						}
					})
				}
			}
		})
	}
}

// lockHookStore runs then once, inside a unit of work, right after the
// unit of work's Tx.LockPool of pool returns: the change's recheck holds
// the pool's row then (docs/security.md A-85).
type lockHookStore struct {
	storage.Store
	mu   sync.Mutex
	pool string
	then func()
}

func (s *lockHookStore) arm(pool string, then func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pool, s.then = pool, then
}

// fired reports whether the armed hook ran.
func (s *lockHookStore) fired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.then == nil
}

func (s *lockHookStore) WithTx(ctx context.Context, fn func(tx storage.Tx) error) error {
	return s.Store.WithTx(ctx, func(tx storage.Tx) error { return fn(lockHookTx{tx, s}) })
}

type lockHookTx struct {
	storage.Tx
	s *lockHookStore
}

func (t lockHookTx) LockPool(ctx context.Context, id string) (storage.Pool, error) {
	p, err := t.Tx.LockPool(ctx, id)
	t.s.mu.Lock()
	then := t.s.then
	if id != t.s.pool {
		then = nil
	}
	if then != nil {
		t.s.then = nil
	}
	t.s.mu.Unlock()
	if then != nil {
		then()
	}
	return p, err
}

// TestPoolRecheckHoldsThePoolUntilTheChangeCommits (docs/security.md
// the competing move starts after the recheck, inside the change's
// unit of work. It must wait for the change to commit (the recheck's read
// holds the row, it is not only a second read), so the provider is created
// in the pool as it was authorized and moves with it afterwards.
func TestPoolRecheckHoldsThePoolUntilTheChangeCommits(t *testing.T) {
	// Sequential: the move is given 500 ms to commit, and under parallel
	// load a move that is not held could still miss that window.
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			hs := &lockHookStore{Store: open(t)}
			e := newPoolEnvOn(t, hs)
			evilOrg, _ := e.evilAdmin(t)
			acme := as(e.orgAdmin(t, e.org.ID, "acme-admin"))
			c := e.poolClient(e.srv.URL)
			id := "race-" + storage.NewID()[:8]
			if _, err := c.CreatePool(as(e.admin), e.validPool(id)); err != nil {
				t.Fatal(err)
			}
			moved := make(chan error, 1)
			waited := false
			hs.arm(id, func() {
				go func() {
					moved <- hs.Store.UpdatePool(context.Background(), id, func(p storage.Pool) (storage.Pool, error) {
						p.OrgID = evilOrg.ID
						return p, nil
					})
				}()
				select {
				case err := <-moved:
					t.Errorf("the competing move committed inside the change's unit of work (err %v): the recheck holds nothing", err)
				case <-time.After(500 * time.Millisecond):
					waited = true
				}
			})
			if _, err := c.CreateProvider(acme, e.validProvider(id, "mine")); err != nil {
				t.Errorf("CreateProvider, authorized and rechecked before the move: %v", err)
			}
			if !hs.fired() {
				t.Fatal("the change took no lock on the pool in its unit of work")
			}
			if waited {
				if err := <-moved; err != nil {
					t.Fatalf("the move, after the change committed: %v", err)
				}
			}
			p, err := hs.Store.GetPool(t.Context(), id)
			if err != nil || p.OrgID != evilOrg.ID {
				t.Errorf("pool after both: org %q, %v; want moved to %q", p.OrgID, err, evilOrg.ID)
			}
			if _, err := hs.Store.GetProvider(t.Context(), id, "mine"); err != nil {
				t.Errorf("the provider created before the move: %v", err)
			}
		})
	}
}

// TestPoolRecheckLetsAConcurrentCreateFinish (docs/security.md A-85): an
// organization administrator's CreateProvider holds the pool (its
// recheck) while an instance administrator's CreateProvider of the same
// provider ID, which is not rechecked, inserts its row and checks the
// pool's foreign key. Holding the row FOR UPDATE made that check wait for
// the holder while the holder waited for the other's key: PostgreSQL
// aborted one as a deadlock and the call answered unavailable. One must
// create the provider and the other answer already_exists.
func TestPoolRecheckLetsAConcurrentCreateFinish(t *testing.T) {
	// Sequential: a 500 ms sleep lets the other insert in first, which
	// parallel load could delay past it.
	hs := &lockHookStore{Store: newPostgresStore(t)}
	e := newPoolEnvOn(t, hs)
	acme := as(e.orgAdmin(t, e.org.ID, "acme-admin"))
	c := e.poolClient(e.srv.URL)
	id := "dl-" + storage.NewID()[:8]
	if _, err := c.CreatePool(as(e.admin), e.validPool(id)); err != nil {
		t.Fatal(err)
	}
	rootErr := make(chan error, 1)
	hs.arm(id, func() {
		go func() {
			_, err := c.CreateProvider(as(e.admin), e.validProvider(id, "same"))
			rootErr <- err
		}()
		time.Sleep(500 * time.Millisecond) // the instance administrator's insert is in
	})
	_, err := c.CreateProvider(acme, e.validProvider(id, "same"))
	rerr := <-rootErr
	if !hs.fired() {
		t.Fatal("the organization administrator's change took no lock on the pool")
	}
	ok, exists := 0, 0
	for who, err := range map[string]error{"organization administrator": err, "instance administrator": rerr} {
		switch connect.CodeOf(err) {
		case connect.CodeUnknown:
			if err == nil {
				ok++
				continue
			}
		case connect.CodeAlreadyExists:
			exists++
			continue
		}
		t.Errorf("%s's CreateProvider: %v; want success or already_exists", who, err)
	}
	if ok != 1 || exists != 1 {
		t.Errorf("%d created and %d already_exists; want one of each", ok, exists)
	}
}
