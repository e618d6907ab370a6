package api

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// TestGitpodListPageSizeBelowOne: every gitpod.v1 List RPC reads a
// pagination.pageSize of 0 or less as the default, as docs/api.md
// ("gitpod.v1 wire contract", Pagination) says and ListPersonalAccessTokens
// does; ListHostAuthenticationTokens refused a negative one as
// invalid_argument.
func TestGitpodListPageSizeBelowOne(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	base, hc := e.h2c(t)
	for name, opts := range map[string][]connect.ClientOption{
		"connect-proto": nil, "connect-json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()},
	} {
		t.Run(name, func(t *testing.T) {
			rc := gitpodv1connect.NewRunnerConfigurationServiceClient(hc, base, opts...)
			uc := gitpodv1connect.NewUserServiceClient(hc, base, opts...)
			if _, err := rc.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
				RunnerId: runnerID, Host: name + ".example.com", Token: "gho_" + name,
				Source: gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT, ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
			}); err != nil {
				t.Fatal(err)
			}
			for _, size := range []int32{0, -1, -1 << 31} {
				pg := &gitpodv1.PaginationRequest{PageSize: size}
				h, err := rc.ListHostAuthenticationTokens(as(runnerPAT), &gitpodv1.ListHostAuthenticationTokensRequest{Pagination: pg})
				if err != nil || len(h.GetTokens()) == 0 {
					t.Errorf("ListHostAuthenticationTokens pageSize %d = %v, %v; want the default page", size, h, err)
				}
				p, err := uc.ListPersonalAccessTokens(as(e.secret), &gitpodv1.ListPersonalAccessTokensRequest{Pagination: pg})
				if err != nil || len(p.GetPersonalAccessTokens()) == 0 {
					t.Errorf("ListPersonalAccessTokens pageSize %d = %v, %v; want the default page", size, p, err)
				}
			}
		})
	}
}
