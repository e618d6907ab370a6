package pools_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// auditDown fails every audit write inside a unit of work.
type auditDown struct{ storage.Store }

func (a auditDown) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return a.Store.WithTx(ctx, func(tx storage.Tx) error { return fn(auditDownTx{tx}) })
}

type auditDownTx struct{ storage.Tx }

func (auditDownTx) AppendAudit(context.Context, ...storage.AuditEvent) error {
	return errors.New("audit table unavailable")
}

// TestChangesAreAtomicWithTheirEvents: a pool or provider created,
// updated or deleted whose audit event cannot be stored is left as it was
// (docs/design.md#audit), no revocation row of a trust change stored;
// before, the change stayed and the lost event was only logged.
func TestChangesAreAtomicWithTheirEvents(t *testing.T) {
	ctx := t.Context()
	up, st := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	if _, err := up.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := up.CreateProvider(ctx, caller, storage.Provider{PoolID: "ci", ID: "gh", Issuer: "https://issuer.example",
		JWKSURI: "https://issuer.example/jwks", Audiences: []string{"sts"}}); err != nil {
		t.Fatal(err)
	}
	down, err := pools.NewService(auditDown{st}, pools.Limits{MaxTokenLifetime: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	unavailable := func(what string, err error) {
		t.Helper()
		if sts.ErrorCode(err) != sts.Unavailable {
			t.Errorf("%s with the audit trail down = %v, want Unavailable", what, err)
		}
	}
	_, err = down.CreatePool(ctx, caller, storage.Pool{ID: "cd", OrgID: "acme", Condition: "true", Scopes: []string{"read"}})
	unavailable("CreatePool", err)
	name := "renamed"
	_, err = down.UpdatePool(ctx, caller, "ci", pools.PoolUpdate{DisplayName: &name})
	unavailable("UpdatePool", err)
	issuer := "https://other.example"
	_, err = down.UpdateProvider(ctx, caller, "ci", "gh", pools.ProviderUpdate{Issuer: &issuer})
	unavailable("UpdateProvider", err)
	// Nor the row its new issuer stores (docs/security.md A-62): the
	// earlier tokens end with the change, not without it.
	if _, err := st.GetRevocation(ctx, storage.RevocationIDProvider("ci", "gh")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("row of an issuer change whose event failed: %v, want ErrNotFound", err)
	}
	unavailable("DeleteProvider", down.DeleteProvider(ctx, caller, "ci", "gh"))
	_, err = down.DeletePool(ctx, caller, "ci")
	unavailable("DeletePool", err)

	if _, err := st.GetPool(ctx, "cd"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a pool whose event failed was stored: %v", err)
	}
	if p, err := st.GetPool(ctx, "ci"); err != nil || p.DisplayName == name {
		t.Errorf("pool after a failed update and delete: %+v, %v; want it unchanged", p, err)
	}
	if p, err := st.GetProvider(ctx, "ci", "gh"); err != nil || p.Issuer != "https://issuer.example" {
		t.Errorf("provider after a failed update and delete: %+v, %v; want it unchanged", p, err)
	}
}
