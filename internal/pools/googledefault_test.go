package pools_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// TestGoogleDefaultScopesNeverHoldOfflineAccess: a default scope never
// holds offline_access (docs/security.md T-151), so a pool's
// google_default_scopes listing it would be dropped without a word at
// /v1/token. Create and update are refused naming the entry, and nothing
// changes; a pool stored with it before can still be disabled, and an
// update dropping it is accepted.
func TestGoogleDefaultScopesNeverHoldOfflineAccess(t *testing.T) {
	ctx := t.Context()
	svc, st := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	p := storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read", "offline_access"},
		GoogleDefaultScopes: []string{"read", "offline_access"}}
	_, err := svc.CreatePool(ctx, caller, p)
	if sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), `google_default_scopes[1]: "offline_access"`) {
		t.Errorf("CreatePool with offline_access in google_default_scopes = %v, want invalid_argument naming google_default_scopes[1]", err)
	}
	if _, err := st.GetPool(ctx, "ci"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused pool stored: %v", err)
	}

	p.GoogleDefaultScopes = []string{"read"}
	if _, err := svc.CreatePool(ctx, caller, p); err != nil {
		t.Fatal(err)
	}
	widened := []string{"offline_access"}
	_, err = svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{GoogleDefaultScopes: &widened})
	if sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), `google_default_scopes[0]: "offline_access"`) {
		t.Errorf("UpdatePool adding offline_access = %v, want invalid_argument naming google_default_scopes[0]", err)
	}
	if got, err := st.GetPool(ctx, "ci"); err != nil || !slices.Equal(got.GoogleDefaultScopes, []string{"read"}) {
		t.Errorf("pool after the refused update: %v %v, want google_default_scopes [read]", got.GoogleDefaultScopes, err)
	}

	// As an older version stored it.
	if err := st.UpdatePool(ctx, "ci", func(p storage.Pool) (storage.Pool, error) {
		p.GoogleDefaultScopes = []string{"read", "offline_access"}
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	on := true
	if got, err := svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{Disabled: &on}); err != nil || !got.Disabled {
		t.Errorf("disable a pool stored with offline_access in google_default_scopes = disabled %v, %v; want disabled", got.Disabled, err)
	}
	dropped := []string{"read"}
	if got, err := svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{GoogleDefaultScopes: &dropped}); err != nil || !slices.Equal(got.GoogleDefaultScopes, dropped) {
		t.Errorf("drop offline_access = %v, %v; want [read]", got.GoogleDefaultScopes, err)
	}
}
