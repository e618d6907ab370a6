package api

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// orgRaceStore runs hook once, the first time DeleteOrganization's
// emptiness check lists pools (after it found no principal or client), or
// the first time a create reads the organization: between the check and
// the transaction that writes.
type orgRaceStore struct {
	storage.Store
	onListPools, onGetOrg func(ctx context.Context)
}

func (s *orgRaceStore) ListPools(ctx context.Context) ([]storage.Pool, error) {
	ps, err := s.Store.ListPools(ctx)
	if h := s.onListPools; h != nil {
		s.onListPools = nil
		h(ctx)
	}
	return ps, err
}

func (s *orgRaceStore) GetOrganization(ctx context.Context, id string) (storage.Organization, error) {
	o, err := s.Store.GetOrganization(ctx, id)
	if h := s.onGetOrg; h != nil {
		s.onGetOrg = nil
		h(ctx)
	}
	return o, err
}

// TestOrganizationDeletionRacingCreate (docs/security.md T-157, A-31): a
// principal created while its organization is being deleted, after the
// deletion found it empty, refuses the deletion (failed_precondition),
// and one created after the organization is gone is refused (not_found):
// never a principal in an organization that no longer exists.
func TestOrganizationDeletionRacingCreate(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			inner := open(t)
			ctx := t.Context()
			c := pat.Caller{Actor: "cli"}
			now := time.Now()
			newOrg := func() storage.Organization {
				t.Helper()
				o, err := CreateOrganization(ctx, inner, c, "doomed", "", now)
				if err != nil {
					t.Fatal(err)
				}
				return o
			}

			// The create lands between the deletion's check and its write.
			o := newOrg()
			store := &orgRaceStore{Store: inner}
			var created storage.Principal
			var cerr error
			store.onListPools = func(ctx context.Context) {
				created, cerr = CreatePrincipal(ctx, inner, c, o.ID, storage.PrincipalServiceAccount, "late", "", now)
			}
			err := DeleteOrganization(ctx, store, c, o.ID, nil, now)
			if cerr != nil {
				t.Fatalf("CreatePrincipal during the deletion: %v", cerr)
			}
			if code := sts.ErrorCode(err); code != sts.FailedPrecondition {
				t.Errorf("DeleteOrganization with a principal created meanwhile = %q (%v), want failed_precondition", code, err)
			}
			if _, gerr := inner.GetOrganization(ctx, o.ID); gerr != nil {
				t.Errorf("principal %s left in organization %s, which is gone (%v)", created.ID, o.ID, gerr)
			}

			// The deletion lands between the create's check and its write.
			o = newOrg()
			store = &orgRaceStore{Store: inner}
			store.onGetOrg = func(ctx context.Context) {
				if err := DeleteOrganization(ctx, inner, c, o.ID, nil, now); err != nil {
					t.Errorf("DeleteOrganization: %v", err)
				}
			}
			p, err := CreatePrincipal(ctx, store, c, o.ID, storage.PrincipalServiceAccount, "late", "", now)
			if code := sts.ErrorCode(err); code != sts.NotFound {
				t.Errorf("CreatePrincipal racing its organization's deletion = %q (%v), want not_found", code, err)
			}
			if ps, _ := inner.ListPrincipals(ctx, o.ID); len(ps) > 0 {
				t.Errorf("principal %s stored in organization %s, which no longer exists (%v)", ps[0].ID, o.ID, p.ID)
			}
		})
	}
}
