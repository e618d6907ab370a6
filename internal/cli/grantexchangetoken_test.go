package cli_test

import (
	"strings"
	"testing"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestGrantInstanceAdminRefusesUnspentExchangeToken (docs/security.md
// an exchange token an organization administrator minted for
// a principal is a credential someone else holds until it is spent or
// expires. Redeemed after a grant of the instance role it would buy an
// access token of the new instance administrator, so the grant refuses
// the principal while one is unspent, naming it; the token, redeemed
// afterwards, buys an ordinary user's token, and once it is spent the
// grant goes through.
func TestGrantInstanceAdminRefusesUnspentExchangeToken(t *testing.T) {
	s, cli, newPrincipal, orgAdmin := startPromotionServer(t)
	ctx := t.Context()
	ops := newPrincipal("ops")
	xt, err := stsv1connect.NewPrincipalServiceClient(h2cClient(orgAdmin), s.api).CreateExchangeToken(ctx,
		&stsv1.CreateExchangeTokenRequest{PrincipalId: ops})
	if err != nil {
		t.Fatalf("org admin CreateExchangeToken for ops: %v", err)
	}
	if code, _, e := cli("principal", "grant-instance-admin", ops); code == 0 || !strings.Contains(e, "exchange token") {
		t.Errorf("grant-instance-admin of ops with the org admin's unspent exchange token = %d %q, want refused naming the exchange token", code, e)
	}
	res, err := gitpodv1connect.NewIdentityServiceClient(h2cClient(""), s.api).ExchangeToken(ctx,
		&gitpodv1.ExchangeTokenRequest{ExchangeToken: xt.GetExchangeToken()})
	if err != nil {
		t.Fatalf("ExchangeToken after the refused grant: %v", err)
	}
	me, err := gitpodv1connect.NewUserServiceClient(h2cClient(res.GetAccessToken()), s.api).GetAuthenticatedUser(ctx, &gitpodv1.GetAuthenticatedUserRequest{})
	if err != nil || me.GetUser().GetId() != ops {
		t.Fatalf("GetAuthenticatedUser with the redeemed token = %q, %v; want ops %s", me.GetUser().GetId(), err, ops)
	}
	// Spent, it is no longer anyone's credential: the grant goes through.
	if code, _, e := cli("principal", "grant-instance-admin", ops); code != 0 {
		t.Errorf("grant-instance-admin of ops once the exchange token is spent = %d %q, want granted", code, e)
	}
}
