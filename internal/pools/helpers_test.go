package pools_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
)

// acmeService is a pool service with lim (a 12 h MaxTokenLifetime when
// unset) over a fresh store holding organization acme, and that store.
func acmeService(t *testing.T, lim pools.Limits) (*pools.Service, storage.Store) {
	t.Helper()
	st := ststest.NewStore(t)
	if err := st.CreateOrganization(t.Context(), storage.Organization{ID: "acme", Name: "Acme", Tier: "enterprise"}); err != nil {
		t.Fatal(err)
	}
	if lim.MaxTokenLifetime == 0 {
		lim.MaxTokenLifetime = 12 * time.Hour
	}
	svc, err := pools.NewService(st, lim)
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}
