package pat_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// updateBetween is storage that runs between once, right after the first
// GetPAT: a change committed between Delete's read and its unit of work.
type updateBetween struct {
	storage.Store
	between func()
}

func (s *updateBetween) GetPAT(ctx context.Context, id string) (storage.PAT, error) {
	p, err := s.Store.GetPAT(ctx, id)
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return p, err
}

// TestDeleteGuardsTheRowItDeletes: Delete ran its guards on a read made
// before its unit of work, so a token an instance administrator gave
// sts:admin in between was deleted by a Delete guarded by Full Access
// (one token on /tokens, or "Delete all tokens", which must pass such a
// token over, docs/security.md A-90). The guards run again in the unit
// of work on the row it holds: that Delete is refused (permission
// denied) and the token stays; a Delete guarded by both scopes deletes
// it.
func TestDeleteGuardsTheRowItDeletes(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			st := &updateBetween{Store: b.open(t)}
			f := newFixture(t, st)
			p, _ := f.create(t, pat.ScopeFull)
			st.between = func() {
				scopes := []string{pat.ScopeFull, pat.ScopeAdmin}
				if _, err := f.svc.Update(context.Background(), caller, "", p.ID, pat.UpdateInput{Scopes: &scopes}); err != nil {
					t.Fatalf("Update: %v", err)
				}
			}
			err := f.svc.Delete(ctx, caller, f.user.ID, p.ID, pat.HeldBy([]string{pat.ScopeFull}))
			if sts.ErrorCode(err) != sts.PermissionDenied {
				t.Errorf("Delete guarded by Full Access of a token given sts:admin meanwhile = %v, want permission denied", err)
			}
			if _, err := f.store.GetPAT(ctx, p.ID); err != nil {
				t.Fatalf("the token holding sts:admin at the deletion: %v, want it kept", err)
			}
			if err := f.svc.Delete(ctx, caller, f.user.ID, p.ID, pat.HeldBy([]string{pat.ScopeFull, pat.ScopeAdmin})); err != nil {
				t.Fatalf("Delete guarded by both scopes: %v", err)
			}
			if _, err := f.store.GetPAT(ctx, p.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("after a Delete its guard allows: %v, want not found", err)
			}
		})
	}
}
