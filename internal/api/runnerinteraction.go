package api

import (
	"context"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// RunnerInteractionService implements gitpod.v1.RunnerInteractionService:
// what a runner calls as itself. GetHostAuthenticationTokenValue needs
// tokens:read and a RUNNER caller; the values leave sealed to the runner's
// registered public key (see hosttoken.Service.RunnerValue).
type RunnerInteractionService struct {
	h *Handler
}

var _ gitpodv1connect.RunnerInteractionServiceHandler = (*RunnerInteractionService)(nil)

// GetHostAuthenticationTokenValue returns the sealed values of the token
// principal_id holds for host on the calling runner, after the read is
// durably audited.
func (s *RunnerInteractionService) GetHostAuthenticationTokenValue(ctx context.Context, req *gitpodv1.GetHostAuthenticationTokenValueRequest) (*gitpodv1.GetHostAuthenticationTokenValueResponse, error) {
	c, ht, err := (&RunnerConfigurationService{h: s.h}).caller(ctx, pat.ScopeTokensRead)
	if err != nil {
		return nil, err
	}
	v, err := ht.RunnerValue(ctx, c, hosttoken.ValueRequest{RunnerID: req.GetRunnerId(), PrincipalID: req.GetPrincipalId(), Host: req.GetHost()})
	if err != nil {
		return nil, err
	}
	out := &gitpodv1.GetHostAuthenticationTokenValueResponse{Value: v.Value, TokenId: v.TokenID,
		ExpiresAt: ts(v.ExpiresAt), RefreshToken: v.RefreshToken, Source: sourceToProto(v.Source)}
	if v.ExternalUserID != "" {
		out.ExternalUserId = &v.ExternalUserID
	}
	if v.IntegrationID != "" {
		out.IntegrationId = &v.IntegrationID
	}
	return out, nil
}

func sourceToProto(src storage.HostTokenSource) gitpodv1.HostAuthenticationTokenSource {
	switch src {
	case storage.HostTokenSourceOAuth:
		return gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH
	case storage.HostTokenSourcePAT:
		return gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT
	}
	return gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_UNSPECIFIED
}
