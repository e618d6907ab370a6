package cli_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestGrantInstanceAdminRefusesLaunderedPAT (docs/security.md A-76): the
// organization administrator mints a PAT for ops, then uses that very PAT
// (acting as ops) to regenerate it, or to create a second PAT and delete
// the first. The newest secret-setting event then names ops itself as the
// actor while the organization administrator holds the secret: a PAT
// whose secret was set over the network, by whoever, is someone else's
// as far as the grant can tell, so it is refused, naming the PAT.
func TestGrantInstanceAdminRefusesLaunderedPAT(t *testing.T) {
	t.Parallel()
	s, cli, newPrincipal, orgAdmin := startPromotionServer(t)
	ctx := t.Context()
	for _, how := range []string{"regenerate", "create-then-delete"} {
		ops := newPrincipal("ops-" + how)
		planted, err := gitpodv1connect.NewUserServiceClient(h2cClient(orgAdmin), s.api).CreatePersonalAccessToken(ctx,
			&gitpodv1.CreatePersonalAccessTokenRequest{UserId: ops, Scopes: []string{"*", "sts:admin"}, ValidFor: durationpb.New(48 * time.Hour)})
		if err != nil {
			t.Fatalf("org admin CreatePersonalAccessToken for ops: %v", err)
		}
		asOps := gitpodv1connect.NewUserServiceClient(h2cClient(planted.GetToken()), s.api)
		var held string
		switch how {
		case "regenerate":
			r, err := asOps.RegeneratePersonalAccessToken(ctx, &gitpodv1.RegeneratePersonalAccessTokenRequest{
				PersonalAccessTokenId: planted.GetPersonalAccessToken().GetId(), ValidFor: durationpb.New(48 * time.Hour)})
			if err != nil {
				t.Fatalf("regenerate with the planted PAT: %v", err)
			}
			held = r.GetToken()
		case "create-then-delete":
			r, err := asOps.CreatePersonalAccessToken(ctx, &gitpodv1.CreatePersonalAccessTokenRequest{
				Scopes: []string{"*", "sts:admin"}, ValidFor: durationpb.New(48 * time.Hour)})
			if err != nil {
				t.Fatalf("create with the planted PAT: %v", err)
			}
			held = r.GetToken()
			if _, err := gitpodv1connect.NewUserServiceClient(h2cClient(held), s.api).DeletePersonalAccessToken(ctx,
				&gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: planted.GetPersonalAccessToken().GetId()}); err != nil {
				t.Fatalf("delete the planted PAT: %v", err)
			}
		}
		code, _, e := cli("principal", "grant-instance-admin", ops)
		if code == 0 {
			_, err := stsv1connect.NewOrganizationServiceClient(h2cClient(held), s.api).CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: "stolen-" + how})
			t.Errorf("%s: grant-instance-admin of ops whose only PAT's secret the org admin holds succeeded; the org admin's secret CreateOrganization = %v (nil: instance role)", how, err)
		} else if !strings.Contains(e, "set by principal:"+ops) {
			t.Errorf("%s: refused with %q, want it to name the PAT whose secret principal:%s set", how, e, ops)
		}
	}
}
