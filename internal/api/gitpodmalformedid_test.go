package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// TestGitpodMalformedIDIsInvalidArgument: every gitpod.v1 request field
// that holds an ID Gitpod makes is a UUID in Gitpod's own contract (its
// protos validate them, and its server answers a value that is not one
// invalid_argument before the call looks anything up). sts answers the
// same, in every protocol, with the field's JSON name in the message; a
// well-formed ID that names nothing keeps its own code (not_found, or
// permission_denied where that hides whether a user exists)
// (docs/security.md F-106).
// codeOK and codeSkip stand in TestGitpodMalformedIDIsInvalidArgument's
// table for a call that succeeds and one whose well-formed case is not
// asked.
const (
	codeOK   connect.Code = 0
	codeSkip connect.Code = 1 << 20
)

func TestGitpodMalformedIDIsInvalidArgument(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	const bad = "nope"
	const absent = "0b6f3c2e-1a2b-4c3d-8e9f-0123456789ab"
	type call func(ctx context.Context, u gitpodv1connect.UserServiceClient, rc gitpodv1connect.RunnerConfigurationServiceClient, ri gitpodv1connect.RunnerInteractionServiceClient, id string) error
	cases := []struct {
		name       string
		token      string
		call       call
		wellFormed connect.Code // the code for a well-formed ID that names nothing
	}{
		{"GetPersonalAccessToken", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.GetPersonalAccessToken(ctx, &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: id})
			return err
		}, connect.CodeNotFound},
		{"UpdatePersonalAccessToken", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			d := "x"
			_, err := u.UpdatePersonalAccessToken(ctx, &gitpodv1.UpdatePersonalAccessTokenRequest{PersonalAccessTokenId: id, Description: &d})
			return err
		}, connect.CodeNotFound},
		{"RegeneratePersonalAccessToken", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.RegeneratePersonalAccessToken(ctx, &gitpodv1.RegeneratePersonalAccessTokenRequest{PersonalAccessTokenId: id, ValidFor: durationpb.New(48 * time.Hour)})
			return err
		}, connect.CodeNotFound},
		{"DeletePersonalAccessToken", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.DeletePersonalAccessToken(ctx, &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: id})
			return err
		}, connect.CodeNotFound},
		{"GetUser", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.GetUser(ctx, &gitpodv1.GetUserRequest{UserId: id})
			return err
		}, connect.CodePermissionDenied},
		{"SetSuspended", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.SetSuspended(ctx, &gitpodv1.SetSuspendedRequest{UserId: id, Suspended: true})
			return err
		}, connect.CodePermissionDenied},
		{"DeleteUser", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.DeleteUser(ctx, &gitpodv1.DeleteUserRequest{UserId: id})
			return err
		}, connect.CodePermissionDenied},
		{"GetUser as administrator", e.admin, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.GetUser(ctx, &gitpodv1.GetUserRequest{UserId: id})
			return err
		}, connect.CodeNotFound},
		{"DeleteUser as administrator", e.admin, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.DeleteUser(ctx, &gitpodv1.DeleteUserRequest{UserId: id})
			return err
		}, connect.CodeNotFound},
		{"ListPersonalAccessTokens as administrator", e.admin, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{id}}})
			return err
		}, connect.CodeNotFound},
		{"CreatePersonalAccessToken", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.CreatePersonalAccessToken(ctx, &gitpodv1.CreatePersonalAccessTokenRequest{UserId: id, Description: "x", ValidFor: nil})
			return err
		}, connect.CodePermissionDenied},
		{"ListPersonalAccessTokens", e.secret, func(ctx context.Context, u gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := u.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{id}}})
			return err
		}, connect.CodePermissionDenied},
		{"GetHostAuthenticationToken", e.secret, func(ctx context.Context, _ gitpodv1connect.UserServiceClient, rc gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := rc.GetHostAuthenticationToken(ctx, &gitpodv1.GetHostAuthenticationTokenRequest{Id: id})
			return err
		}, connect.CodeNotFound},
		{"ListHostAuthenticationTokens runnerId", e.secret, func(ctx context.Context, _ gitpodv1connect.UserServiceClient, rc gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := rc.ListHostAuthenticationTokens(ctx, &gitpodv1.ListHostAuthenticationTokensRequest{Filter: &gitpodv1.ListHostAuthenticationTokensRequest_Filter{RunnerId: &id}})
			return err
		}, codeOK},
		{"UpdateHostAuthenticationTokenMetadata runnerId", runnerPAT, func(ctx context.Context, _ gitpodv1connect.UserServiceClient, rc gitpodv1connect.RunnerConfigurationServiceClient, _ gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := rc.UpdateHostAuthenticationTokenMetadata(ctx, &gitpodv1.UpdateHostAuthenticationTokenMetadataRequest{RunnerId: id, Id: absent})
			return err
		}, connect.CodeNotFound},
		{"GetHostAuthenticationTokenValue runnerId", runnerPAT, func(ctx context.Context, _ gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, ri gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := ri.GetHostAuthenticationTokenValue(ctx, &gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: id, PrincipalId: e.user.ID, Host: "github.com"})
			return err
		}, codeSkip},
		{"GetHostAuthenticationTokenValue principalId", runnerPAT, func(ctx context.Context, _ gitpodv1connect.UserServiceClient, _ gitpodv1connect.RunnerConfigurationServiceClient, ri gitpodv1connect.RunnerInteractionServiceClient, id string) error {
			_, err := ri.GetHostAuthenticationTokenValue(ctx, &gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: runnerID, PrincipalId: id, Host: "github.com"})
			return err
		}, codeSkip},
	}
	for name, opts := range map[string][]connect.ClientOption{
		"connect": nil, "connect-json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
	} {
		hc := e.srv.Client()
		u := gitpodv1connect.NewUserServiceClient(hc, e.srv.URL, opts...)
		rc := gitpodv1connect.NewRunnerConfigurationServiceClient(hc, e.srv.URL, opts...)
		ri := gitpodv1connect.NewRunnerInteractionServiceClient(hc, e.srv.URL, opts...)
		for _, c := range cases {
			err := c.call(as(c.token), u, rc, ri, bad)
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("%s %s(%q) = %v, want invalid_argument", name, c.name, bad, err)
			}
			if c.wellFormed == codeSkip {
				continue
			}
			err = c.call(as(c.token), u, rc, ri, absent)
			if got := connect.CodeOf(err); err == nil && c.wellFormed != codeOK || err != nil && got != c.wellFormed {
				t.Errorf("%s %s(well-formed, absent) = %v, want %v", name, c.name, err, c.wellFormed)
			}
		}
	}
}
