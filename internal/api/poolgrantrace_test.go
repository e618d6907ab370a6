package api

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage"
)

// TestGrantBetweenCheckAndBindIsHonoured (docs/security.md A-97): an
// organization administrator may not bind a pool to an instance
// administrator: the pool's tokens would act as that principal.
// CreatePool and UpdatePool with principal_id judged the principal on one
// read and wrote the pool in a later transaction; the instance role
// granted in between was not seen there, and the pool was bound to the
// new instance administrator. The write judges the principal again on
// the row it holds: failed_precondition, nothing bound.
func TestGrantBetweenCheckAndBindIsHonoured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		call func(c stsv1connect.PoolServiceClient, ctx context.Context, org, id string) error
	}{
		{"CreatePool", func(c stsv1connect.PoolServiceClient, ctx context.Context, org, id string) error {
			_, err := c.CreatePool(ctx, &stsv1.CreatePoolRequest{PoolId: "bound", OrganizationId: org,
				Condition: "true", Scopes: []string{"read"}, PrincipalId: id})
			return err
		}},
		{"UpdatePool", func(c stsv1connect.PoolServiceClient, ctx context.Context, _, id string) error {
			_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "bound", PrincipalId: &id})
			return err
		}},
	} {
		for _, b := range raceBackends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				base := b.open(t)
				ctx := t.Context()
				org, grantee := acmeAnd(t, base, storage.PrincipalServiceAccount, "grantee")
				if tc.name == "UpdatePool" {
					if err := base.CreatePool(ctx, storage.Pool{ID: "bound", OrgID: org.ID, Condition: "true", Scopes: []string{"read"}}); err != nil {
						t.Fatal(err)
					}
				}
				store := &grantOnRead{Store: base, target: grantee.ID, t: t}
				e := newPoolEnvOn(t, store)
				admin := e.orgAdmin(t, org.ID, "org-admin")
				err := tc.call(e.poolClient(e.srv.URL), as(admin), org.ID, grantee.ID)
				wantCode(t, tc.name, err, connect.CodeFailedPrecondition)
				if got, err := base.GetPrincipal(ctx, grantee.ID); err != nil || !got.InstanceAdmin {
					t.Fatalf("the grant did not commit during the call: %+v, %v", got, err)
				}
				ps, err := base.ListPools(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range ps {
					if p.PrincipalID == grantee.ID {
						t.Errorf("%s bound pool %q to the new instance administrator", tc.name, p.ID)
					}
				}
			})
		}
	}
}
