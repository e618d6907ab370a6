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

// TestPoolNeverGrantsIntrospect: a pool's scopes may not hold
// "introspect", which lets a bearer token introspect every token of its
// organization; a pool grants its scopes to whoever presents a credential
// it trusts, anonymous callers included (docs/security.md A-68). Create
// and update are refused naming the field, and nothing changes.
func TestPoolNeverGrantsIntrospect(t *testing.T) {
	ctx := t.Context()
	svc, st := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	p := storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read", "introspect"}, AllowUnauthenticated: true}
	_, err := svc.CreatePool(ctx, caller, p)
	if sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), `scopes[1]: "introspect"`) {
		t.Errorf("CreatePool with introspect = %v, want invalid_argument naming scopes[1]", err)
	}
	if _, err := st.GetPool(ctx, "ci"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused pool stored: %v", err)
	}

	p.Scopes = []string{"read"}
	if _, err := svc.CreatePool(ctx, caller, p); err != nil {
		t.Fatal(err)
	}
	widened := []string{"introspect", "read"}
	_, err = svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{Scopes: &widened})
	if sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), `scopes[0]: "introspect"`) {
		t.Errorf("UpdatePool adding introspect = %v, want invalid_argument naming scopes[0]", err)
	}
	if got, err := st.GetPool(ctx, "ci"); err != nil || !slices.Equal(got.Scopes, []string{"read"}) {
		t.Errorf("pool after the refused update: %v %v, want scopes [read]", got.Scopes, err)
	}
}
