package pools_test

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

// TestDryRunClientIDInUpperCase (docs/security.md T-215): `sts pool test
// --client` in direct mode (no API in between to lower it) names a client
// by its UUID in any case, as sts.v1 does (T-210); it was an error, "no
// client" of the organization.
func TestDryRunClientIDInUpperCase(t *testing.T) {
	t.Parallel()
	svc, st := acmeService(t, pools.Limits{})
	ctx := t.Context()
	if err := st.CreatePool(ctx, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "bot"}
	if err := st.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	cl := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: []string{"ci"}, Scopes: []string{"read"}}
	if err := st.CreateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	res, err := svc.TestPool(ctx, pools.TestInput{PoolID: "ci", SubjectToken: "not-a-jwt",
		Request: policy.Request{ClientID: strings.ToUpper(cl.ID), Scopes: []string{"read"}}})
	if err != nil {
		t.Fatalf("TestPool with the client's ID in upper case: %v, want a verdict", err)
	}
	if res.Allowed {
		t.Errorf("a token that is no JWT: allowed")
	}
}
