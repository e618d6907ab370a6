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

// TestPoolStoredWithIntrospectCanBeDisabled: a pool stored with
// "introspect" before A-68 (it grants it no more) must not block an
// update that leaves its scopes alone: above all `sts pool disable`, the
// first thing an administrator reaches for. An update that sets scopes is
// held to the rule, and one that drops the scope is accepted.
func TestPoolStoredWithIntrospectCanBeDisabled(t *testing.T) {
	ctx := t.Context()
	svc, st := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	// As an older version stored it.
	if err := st.UpdatePool(ctx, "ci", func(p storage.Pool) (storage.Pool, error) {
		p.Scopes = []string{"read", "introspect"}
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	on := true
	p, err := svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{Disabled: &on})
	if err != nil || !p.Disabled {
		t.Fatalf("disable a pool stored with introspect = disabled %v, %v; want disabled", p.Disabled, err)
	}
	name := "CI"
	if _, err := svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{DisplayName: &name}); err != nil {
		t.Errorf("rename a pool stored with introspect: %v", err)
	}
	kept := []string{"introspect", "write"}
	if _, err := svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{Scopes: &kept}); sts.ErrorCode(err) != sts.Invalid {
		t.Errorf("set scopes still holding introspect = %v, want invalid_argument", err)
	}
	dropped := []string{"read"}
	if p, err := svc.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{Scopes: &dropped}); err != nil || !slices.Equal(p.Scopes, dropped) {
		t.Errorf("drop introspect = %v, %v; want [read]", p.Scopes, err)
	}
}
