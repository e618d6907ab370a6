package pools_test

import (
	"testing"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// TestDeleteDeclaredRefused: a pool or provider the configuration file
// declares is not deleted, since the next start would create it again
// with its trust (docs/security.md A-59). The refusal is
// FailedPrecondition and changes nothing: no revocation row, no
// audit event, the records kept. A provider the file does not declare,
// in a declared pool, is deleted as before.
func TestDeleteDeclaredRefused(t *testing.T) {
	ctx := t.Context()
	svc, st := acmeService(t, pools.Limits{Declared: map[pools.TrustID]bool{{Pool: "ci"}: true, {Pool: "ci", Provider: "github"}: true}})
	caller := pools.Caller{Actor: "test"}
	if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"github", "extra"} {
		if _, err := svc.CreateProvider(ctx, caller, storage.Provider{PoolID: "ci", ID: id, Issuer: "https://" + id + ".example",
			JWKSURI: "https://" + id + ".example/jwks", Audiences: []string{"sts"}}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := st.ListAudit(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := svc.DeletePool(ctx, caller, "ci"); sts.ErrorCode(err) != sts.FailedPrecondition ||
		sts.ErrorMessage(err) != "pool ci is declared in the configuration file; disable it (`sts pool disable ci`) or remove it from the file first" {
		t.Errorf("DeletePool(declared) = %v, want FailedPrecondition naming the command", err)
	}
	if err := svc.DeleteProvider(ctx, caller, "ci", "github"); sts.ErrorCode(err) != sts.FailedPrecondition ||
		sts.ErrorMessage(err) != "provider github of pool ci is declared in the configuration file; disable it (`sts provider disable github --pool ci`) or remove it from the file first" {
		t.Errorf("DeleteProvider(declared) = %v, want FailedPrecondition naming the command", err)
	}
	if _, err := st.GetProvider(ctx, "ci", "github"); err != nil {
		t.Errorf("the declared provider after the refusals: %v", err)
	}
	if rows, err := st.GetRevocations(ctx, storage.RevocationIDPool("ci"), storage.RevocationIDProvider("ci", "github")); err != nil || len(rows) != 0 {
		t.Errorf("revocation rows after the refusals = %v, %v; want none", rows, err)
	}
	if after, err := st.ListAudit(ctx, storage.AuditFilter{}); err != nil || len(after) != len(before) {
		t.Errorf("audit events after the refusals: %d, %v; want %d (a refusal changes nothing)", len(after), err, len(before))
	}

	if err := svc.DeleteProvider(ctx, caller, "ci", "extra"); err != nil {
		t.Errorf("DeleteProvider(not declared) = %v", err)
	}
	if _, err := st.GetRevocation(ctx, storage.RevocationIDProvider("ci", "extra")); err != nil {
		t.Errorf("the deleted provider's revocation row (A-54): %v", err)
	}
}
