package pools_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// orgDeletingStore deletes organization victim right after the first read
// of it: between CreatePool's check and the unit of work that writes.
type orgDeletingStore struct {
	storage.Store
	victim string
	done   bool
}

func (s *orgDeletingStore) GetOrganization(ctx context.Context, id string) (storage.Organization, error) {
	o, err := s.Store.GetOrganization(ctx, id)
	if err == nil && id == s.victim && !s.done {
		s.done = true
		err = s.Store.DeleteOrganization(ctx, id)
		return o, err
	}
	return o, err
}

// TestCreatePoolRacingOrganizationDeletion (docs/security.md ):
// a pool created while its (empty) organization is being deleted is
// refused, never stored in an organization that no longer exists.
func TestCreatePoolRacingOrganizationDeletion(t *testing.T) {
	_, st := acmeService(t, pools.Limits{})
	store := &orgDeletingStore{Store: st, victim: "acme"}
	svc, err := pools.NewService(store, pools.Limits{MaxTokenLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreatePool(t.Context(), pools.Caller{Actor: "test"}, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}})
	if !store.done {
		t.Fatal("the deletion did not run")
	}
	if code := sts.ErrorCode(err); code != sts.NotFound {
		t.Errorf("CreatePool racing its organization's deletion = %q (%v), want not_found", code, err)
	}
	if _, gerr := st.GetPool(t.Context(), "ci"); gerr == nil {
		t.Error("pool ci stored in organization acme, which no longer exists")
	}
}
