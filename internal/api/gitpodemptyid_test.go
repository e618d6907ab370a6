package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// TestGitpodEmptyPATIDIsInvalidArgument: a personalAccessTokenId left
// empty names no token, and Gitpod's contract declares the field a UUID,
// which the empty string is not: its server answers invalid_argument, as
// sts's host token RPCs answer an empty id. Get, Update, Regenerate and
// Delete answered it not_found, which a generated client's caller (a
// Terraform provider's read among them) takes for a token deleted since.
// Every protocol, both stores; the caller's tokens are untouched
// (docs/security.md F-112).
func TestGitpodEmptyPATIDIsInvalidArgument(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, e *env) {
		calls := map[string]func(ctx context.Context, u gitpodv1connect.UserServiceClient) error{
			"GetPersonalAccessToken": func(ctx context.Context, u gitpodv1connect.UserServiceClient) error {
				_, err := u.GetPersonalAccessToken(ctx, &gitpodv1.GetPersonalAccessTokenRequest{})
				return err
			},
			"UpdatePersonalAccessToken": func(ctx context.Context, u gitpodv1connect.UserServiceClient) error {
				d := "renamed"
				_, err := u.UpdatePersonalAccessToken(ctx, &gitpodv1.UpdatePersonalAccessTokenRequest{Description: &d})
				return err
			},
			"RegeneratePersonalAccessToken": func(ctx context.Context, u gitpodv1connect.UserServiceClient) error {
				_, err := u.RegeneratePersonalAccessToken(ctx, &gitpodv1.RegeneratePersonalAccessTokenRequest{ValidFor: durationpb.New(48 * time.Hour)})
				return err
			},
			"DeletePersonalAccessToken": func(ctx context.Context, u gitpodv1connect.UserServiceClient) error {
				_, err := u.DeletePersonalAccessToken(ctx, &gitpodv1.DeletePersonalAccessTokenRequest{})
				return err
			},
		}
		before, _, err := e.pats.List(t.Context(), e.user.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for proto, opts := range map[string][]connect.ClientOption{
			"connect": nil, "connect-json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
		} {
			u := gitpodv1connect.NewUserServiceClient(e.srv.Client(), e.srv.URL, opts...)
			for name, call := range calls {
				err := call(as(e.secret), u)
				if connect.CodeOf(err) != connect.CodeInvalidArgument {
					t.Errorf("%s %s(personalAccessTokenId empty) = %v, want invalid_argument", proto, name, err)
					continue
				}
				if ce := new(connect.Error); !errors.As(err, &ce) || ce.Message() != "personalAccessTokenId must be a UUID" {
					t.Errorf("%s %s: %v, want the message %q", proto, name, err, "personalAccessTokenId must be a UUID")
				}
			}
		}
		after, _, err := e.pats.List(t.Context(), e.user.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) || after[0].Description != before[0].Description || !after[0].ExpiresAt.Equal(before[0].ExpiresAt) {
			t.Errorf("the caller's tokens changed: %+v, were %+v", after, before)
		}
	})
}
