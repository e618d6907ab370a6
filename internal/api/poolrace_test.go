package api

import (
	"context"
	"sync"
	"testing"

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
