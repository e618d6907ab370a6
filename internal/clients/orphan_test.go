package clients_test

import (
	"context"
	"testing"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// principalDeletingStore disables and deletes principal victim, as
// DeletePrincipal does, right after the first read of it: between
// Create's check and the transaction that writes.
type principalDeletingStore struct {
	storage.Store
	victim string
	done   bool
}

func (s *principalDeletingStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := s.Store.GetPrincipal(ctx, id)
	if err != nil || id != s.victim || s.done {
		return p, err
	}
	s.done = true
	if err := s.Store.UpdatePrincipal(ctx, id, func(o storage.Principal) (storage.Principal, error) { o.Disabled = true; return o, nil }); err != nil {
		return p, err
	}
	return p, s.Store.DeletePrincipal(ctx, id)
}

// TestCreateRacingPrincipalDeletion (docs/security.md ): a
// client created while its principal is being deleted is refused, never
// stored bound to a principal that no longer exists.
func TestCreateRacingPrincipalDeletion(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		store := &principalDeletingStore{Store: f.store.Store, victim: f.sa.ID}
		svc, err := clients.NewService(store, pepper)
		if err != nil {
			t.Fatal(err)
		}
		cl, _, err := svc.Create(t.Context(), clients.Caller{}, f.valid())
		if !store.done {
			t.Fatal("the deletion did not run")
		}
		if code := sts.ErrorCode(err); code != sts.NotFound {
			t.Errorf("Create racing its principal's deletion = %q (%v), want not_found", code, err)
		}
		if n := f.count(t); n != 0 {
			t.Errorf("client %s stored for principal %s, which no longer exists", cl.ID, f.sa.ID)
		}
	})
}
