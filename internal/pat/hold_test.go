package pat_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// patDeletingStore runs DeletePrincipal's steps (disable, delete the
// owner's PATs, delete the principal) right after the first read of
// victim: between the check and the transaction that writes.
type patDeletingStore struct {
	storage.Store
	victim string
	done   bool
}

func (s *patDeletingStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := s.Store.GetPrincipal(ctx, id)
	if err != nil || id != s.victim || s.done {
		return p, err
	}
	s.done = true
	_ = s.Store.UpdatePrincipal(ctx, id, func(o storage.Principal) (storage.Principal, error) { o.Disabled = true; return o, nil })
	pats, _ := s.Store.ListPATs(ctx, id)
	for _, x := range pats {
		_ = s.Store.DeletePAT(ctx, x.ID)
	}
	if err := s.Store.DeletePrincipal(ctx, id); err != nil {
		panic(err)
	}
	return p, nil
}

// TestCreateRacingOwnerDeletion (docs/security.md A-87): a PAT created
// while its owner is being deleted is refused, never stored for an owner
// that no longer exists; nor is an exchange token minted for one.
func TestCreateRacingOwnerDeletion(t *testing.T) {
	for _, b := range backends {
		for _, what := range []string{"pat", "exchange"} {
			t.Run(b.name+"/"+what, func(t *testing.T) {
				inner := b.open(t)
				f := newFixture(t, inner)
				store := &patDeletingStore{Store: inner, victim: f.user.ID}
				svc, err := pat.NewService(store, testPepper)
				if err != nil {
					t.Fatal(err)
				}
				svc.Now = f.clock.Now
				var id string
				if what == "pat" {
					var p storage.PAT
					p, _, err = svc.Create(t.Context(), pat.Caller{}, pat.CreateInput{OwnerID: f.user.ID, Description: "x",
						Scopes: []string{"*"}, ExpiresAt: f.clock.Now().Add(48 * time.Hour)})
					id = p.ID
				} else {
					var x storage.ExchangeToken
					x, _, err = svc.CreateExchangeToken(t.Context(), pat.Caller{}, f.user.ID, time.Minute, pat.ExchangeSource{})
					id = x.ID
				}
				if !store.done {
					t.Fatal("deletion did not run")
				}
				if _, gerr := inner.GetPrincipal(t.Context(), f.user.ID); gerr == nil {
					t.Fatal("the owner was not deleted")
				}
				if code := sts.ErrorCode(err); code != sts.NotFound {
					t.Errorf("%s racing its owner's deletion = %q (%v), want not_found", what, code, err)
				}
				if left, _ := inner.ListPATs(t.Context(), f.user.ID); len(left) > 0 {
					t.Errorf("PAT %s stored for owner %s, which no longer exists", left[0].ID, f.user.ID)
				}
				if what == "exchange" && id != "" {
					t.Errorf("exchange token %s minted for principal %s, which no longer exists", id, f.user.ID)
				}
			})
		}
	}
}
