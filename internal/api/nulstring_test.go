package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestNULStringsRefused is docs/security.md T-108: a string field holding
// a NUL character (U+0000, valid UTF-8, so protobuf and JSON accept it) is
// invalid_argument naming the field, on every backend and in every
// protocol Gitpod's clients speak. PostgreSQL refuses NUL in text, so such
// an ID or description used to reach it and come back as a storage
// failure (unavailable, with Retry-After: SDKs retry, the operator is
// told storage fails), while SQLite stored the description as sent.
func TestNULStringsRefused(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, e *env) {
		base, hc := e.h2c(t)
		for name, opts := range map[string][]connect.ClientOption{
			"connect-proto": nil, "connect-json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()},
		} {
			t.Run(name, func(t *testing.T) {
				uc := gitpodv1connect.NewUserServiceClient(hc, base, opts...)
				ic := gitpodv1connect.NewIdentityServiceClient(hc, base, opts...)
				pc := stsv1connect.NewPrincipalServiceClient(hc, base, opts...)
				const bad = "x\x00y"
				for what, call := range map[string]func() error{
					"personalAccessTokenId": func() error {
						_, err := uc.GetPersonalAccessToken(as(e.secret), &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: bad})
						return err
					},
					"personalAccessTokenId ": func() error {
						_, err := uc.DeletePersonalAccessToken(as(e.secret), &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: bad})
						return err
					},
					"description": func() error {
						_, err := uc.CreatePersonalAccessToken(as(e.secret), &gitpodv1.CreatePersonalAccessTokenRequest{
							Description: bad, ValidFor: durationpb.New(48 * time.Hour)})
						return err
					},
					"userId": func() error {
						_, err := uc.GetUser(as(e.admin), &gitpodv1.GetUserRequest{UserId: bad})
						return err
					},
					"userId ": func() error {
						_, err := uc.SetSuspended(as(e.admin), &gitpodv1.SetSuspendedRequest{UserId: bad, Suspended: true})
						return err
					},
					"userId  ": func() error {
						_, err := uc.DeleteUser(as(e.admin), &gitpodv1.DeleteUserRequest{UserId: bad})
						return err
					},
					"filter.userIds": func() error {
						_, err := uc.ListPersonalAccessTokens(as(e.admin), &gitpodv1.ListPersonalAccessTokensRequest{
							Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{bad}}})
						return err
					},
					"pagination.token": func() error {
						_, err := uc.ListPersonalAccessTokens(as(e.secret), &gitpodv1.ListPersonalAccessTokensRequest{
							Pagination: &gitpodv1.PaginationRequest{Token: bad}})
						return err
					},
					"audience": func() error {
						_, err := ic.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: []string{"https://a", bad}})
						return err
					},
					"principalId": func() error {
						_, err := pc.GetPrincipal(as(e.admin), &stsv1.GetPrincipalRequest{PrincipalId: bad})
						return err
					},
				} {
					err := call()
					field := strings.TrimSpace(what)
					if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), field) {
						t.Errorf("%s holding NUL: %v, want invalid_argument naming %s", field, err, field)
					}
				}
				if l, _ := e.store.ListPATs(t.Context(), e.user.ID); len(l) != 1 {
					t.Errorf("%d PATs stored, want only the env's", len(l))
				}
			})
		}
		// The Stainless SDKs' query cursor, as a string field of the request.
		u := base + gitpodv1connect.UserServiceListPersonalAccessTokensProcedure + "?" + url.Values{"token": {"x\x00y"}}.Encode()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.secret)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("?token= holding NUL: HTTP %d, want 400", res.StatusCode)
		}
	})
}
