package api

import (
	"context"
	"errors"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// TestGitpodRefusalsNameJSONFields: a gitpod.v1 refusal names the field a
// Gitpod client knows, its JSON name with the path it sits at, as the host
// token RPCs and F-106's UUID rule do: an empty userId of SetSuspended and
// DeleteUser was "user_id required", an empty exchangeToken
// "exchange_token required", and a filter of ListHostAuthenticationTokens
// that was not a UUID was blamed on "subject.id" or "userId", fields that
// request does not have (docs/security.md F-114). Each refusal comes before
// anything is read from storage, so one store (SQLite) is enough; every
// protocol, with the generated clients.
func TestGitpodRefusalsNameJSONFields(t *testing.T) {
	t.Parallel()
	e, _, _, _ := hostEnv(t)
	const other = "0b6f3c2e-1a2b-4c3d-8e9f-0123456789ab"
	bad, subject := "nope", e.user.ID
	otherUser := other
	type clients struct {
		u  gitpodv1connect.UserServiceClient
		id gitpodv1connect.IdentityServiceClient
		rc gitpodv1connect.RunnerConfigurationServiceClient
	}
	cases := []struct {
		name, want string
		call       func(ctx context.Context, c clients) error
	}{
		{"SetSuspended", "userId is required", func(ctx context.Context, c clients) error {
			_, err := c.u.SetSuspended(ctx, &gitpodv1.SetSuspendedRequest{Suspended: true})
			return err
		}},
		{"DeleteUser", "userId is required", func(ctx context.Context, c clients) error {
			_, err := c.u.DeleteUser(ctx, &gitpodv1.DeleteUserRequest{})
			return err
		}},
		{"ExchangeToken", "exchangeToken is required", func(ctx context.Context, c clients) error {
			_, err := c.id.ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{})
			return err
		}},
		{"ListHostAuthenticationTokens filter.subjectId", "filter.subjectId must be a UUID", func(ctx context.Context, c clients) error {
			_, err := c.rc.ListHostAuthenticationTokens(ctx, &gitpodv1.ListHostAuthenticationTokensRequest{Filter: &gitpodv1.ListHostAuthenticationTokensRequest_Filter{SubjectId: &bad}})
			return err
		}},
		{"ListHostAuthenticationTokens filter.userId", "filter.userId must be a UUID", func(ctx context.Context, c clients) error {
			_, err := c.rc.ListHostAuthenticationTokens(ctx, &gitpodv1.ListHostAuthenticationTokensRequest{Filter: &gitpodv1.ListHostAuthenticationTokensRequest_Filter{UserId: &bad}})
			return err
		}},
		{"ListHostAuthenticationTokens both", "filter.userId and filter.subjectId name different principals", func(ctx context.Context, c clients) error {
			_, err := c.rc.ListHostAuthenticationTokens(ctx, &gitpodv1.ListHostAuthenticationTokensRequest{Filter: &gitpodv1.ListHostAuthenticationTokensRequest_Filter{SubjectId: &subject, UserId: &otherUser}})
			return err
		}},
	}
	for proto, opts := range map[string][]connect.ClientOption{
		"connect": nil, "connect-json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
	} {
		hc := e.srv.Client()
		c := clients{
			u:  gitpodv1connect.NewUserServiceClient(hc, e.srv.URL, opts...),
			id: gitpodv1connect.NewIdentityServiceClient(hc, e.srv.URL, opts...),
			rc: gitpodv1connect.NewRunnerConfigurationServiceClient(hc, e.srv.URL, opts...),
		}
		for _, tc := range cases {
			err := tc.call(as(e.secret), c)
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || ce.Message() != tc.want {
				t.Errorf("%s %s = %v, want invalid_argument %q", proto, tc.name, err, tc.want)
			}
		}
	}
}
