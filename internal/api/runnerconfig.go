package api

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// RunnerConfigurationService implements gitpod.v1.RunnerConfigurationService
// (gitpod.v1.RunnerConfigurationService) on hosttoken.Service. Reads need tokens:read and changes
// tokens:write; who may act on which token (subject, runner, organization
// admin) is decided by hosttoken. No RPC here returns a token's value:
// runners read values sealed to their key through RunnerInteractionService.
type RunnerConfigurationService struct {
	h *Handler
}

var _ gitpodv1connect.RunnerConfigurationServiceHandler = (*RunnerConfigurationService)(nil)

// caller authenticates the request for scope and returns the vault.
func (s *RunnerConfigurationService) caller(ctx context.Context, scope string) (hosttoken.Caller, *hosttoken.Service, error) {
	ht := s.h.hostTokens.Load()
	if ht == nil {
		return hosttoken.Caller{}, nil, sts.Errorf(sts.Unavailable, "host token vault not ready")
	}
	id, err := require(ctx, scope)
	if err != nil {
		return hosttoken.Caller{}, nil, err
	}
	return hosttoken.Caller{OrgID: id.OrgID, PrincipalID: id.PrincipalID, Kind: id.Kind,
		Admin: id.Allows(pat.ScopeAdmin), RequestID: id.RequestID, ClientIP: id.ClientIP, UserAgent: id.UserAgent}, ht, nil
}

var sourceFromProto = map[gitpodv1.HostAuthenticationTokenSource]storage.HostTokenSource{
	gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_UNSPECIFIED: "",
	gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH:       storage.HostTokenSourceOAuth,
	gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT:         storage.HostTokenSourcePAT,
}

// timestamp checks a Timestamp against the gitpod.v1 range (0001-01-01 to
// 9999-12-31, nanos in [0, 1e9)); JSON input was already range-checked by
// protojson, binary input was not. It refuses the least of them too,
// 0001-01-01T00:00:00Z: AsTime makes it Go's zero time, which every
// field checked here reads as unset (a host token never expiring, an
// expiry cleared, a revocation of nothing; docs/api.md).
func timestamp(field string, t *timestamppb.Timestamp) error {
	if t == nil {
		return nil
	}
	if err := t.CheckValid(); err != nil {
		return sts.Errorf(sts.Invalid, "%s is not a valid timestamp (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z)", field)
	}
	if t.AsTime().IsZero() {
		return sts.Errorf(sts.Invalid, "%s must be after 0001-01-01T00:00:00Z", field)
	}
	return nil
}

// CreateHostAuthenticationToken stores a token; the response never holds
// the secret values.
func (s *RunnerConfigurationService) CreateHostAuthenticationToken(ctx context.Context, req *gitpodv1.CreateHostAuthenticationTokenRequest) (*gitpodv1.CreateHostAuthenticationTokenResponse, error) {
	c, ht, err := s.caller(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	if err := timestamp("expiresAt", req.GetExpiresAt()); err != nil {
		return nil, err
	}
	src, ok := sourceFromProto[req.GetSource()]
	if !ok {
		return nil, sts.Errorf(sts.Invalid, "source must be a HOST_AUTHENTICATION_TOKEN_SOURCE_* value")
	}
	sub := hosttoken.Subject{ID: req.GetSubject().GetId()}
	if p := req.GetSubject().GetPrincipal(); p != gitpodv1.Principal_PRINCIPAL_UNSPECIFIED {
		if sub.Kind, ok = kindFromProto(p); !ok {
			return nil, sts.Errorf(sts.Invalid, "subject.principal must be a PRINCIPAL_* value")
		}
	}
	in := hosttoken.CreateInput{
		RunnerID: req.GetRunnerId(), Subject: sub, UserID: req.GetUserId(), Host: req.GetHost(),
		Token: req.GetToken(), RefreshToken: req.GetRefreshToken(), Source: src,
		IntegrationID: req.GetIntegrationId(), Scopes: req.GetScopes(),
	}
	if req.GetExpiresAt() != nil {
		in.ExpiresAt = req.GetExpiresAt().AsTime()
	}
	t, err := ht.Create(ctx, c, in)
	if err != nil {
		return nil, err
	}
	return &gitpodv1.CreateHostAuthenticationTokenResponse{Token: hostTokenToProto(t)}, nil
}

// GetHostAuthenticationToken returns one token's metadata.
func (s *RunnerConfigurationService) GetHostAuthenticationToken(ctx context.Context, req *gitpodv1.GetHostAuthenticationTokenRequest) (*gitpodv1.GetHostAuthenticationTokenResponse, error) {
	c, ht, err := s.caller(ctx, pat.ScopeTokensRead)
	if err != nil {
		return nil, err
	}
	t, err := ht.Get(ctx, c, req.GetId())
	if err != nil {
		return nil, err
	}
	return &gitpodv1.GetHostAuthenticationTokenResponse{Token: hostTokenToProto(t)}, nil
}

// ListHostAuthenticationTokens lists the tokens the caller may act on.
func (s *RunnerConfigurationService) ListHostAuthenticationTokens(ctx context.Context, req *gitpodv1.ListHostAuthenticationTokensRequest) (*gitpodv1.ListHostAuthenticationTokensResponse, error) {
	c, ht, err := s.caller(ctx, pat.ScopeTokensRead)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	list, next, err := ht.List(ctx, c, hosttoken.ListInput{
		RunnerID: f.GetRunnerId(), SubjectID: f.GetSubjectId(), UserID: f.GetUserId(),
		PageToken: req.GetPagination().GetToken(), PageSize: int(req.GetPagination().GetPageSize()),
	})
	if err != nil {
		return nil, err
	}
	out := &gitpodv1.ListHostAuthenticationTokensResponse{Pagination: &gitpodv1.PaginationResponse{NextToken: next}}
	for _, t := range list {
		out.Tokens = append(out.Tokens, hostTokenToProto(t))
	}
	return out, nil
}

// UpdateHostAuthenticationToken changes values, expiry or scopes.
func (s *RunnerConfigurationService) UpdateHostAuthenticationToken(ctx context.Context, req *gitpodv1.UpdateHostAuthenticationTokenRequest) (*gitpodv1.UpdateHostAuthenticationTokenResponse, error) {
	c, ht, err := s.caller(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	if err := timestamp("expiresAt", req.GetExpiresAt()); err != nil {
		return nil, err
	}
	in := hosttoken.UpdateInput{Token: req.Token, RefreshToken: req.RefreshToken, Scopes: req.GetScopes()}
	if req.ExpiresAt != nil {
		t := req.GetExpiresAt().AsTime()
		in.ExpiresAt = &t
	}
	if _, err := ht.Update(ctx, c, req.GetId(), in); err != nil {
		return nil, err
	}
	return &gitpodv1.UpdateHostAuthenticationTokenResponse{}, nil
}

// DeleteHostAuthenticationToken deletes a token.
func (s *RunnerConfigurationService) DeleteHostAuthenticationToken(ctx context.Context, req *gitpodv1.DeleteHostAuthenticationTokenRequest) (*gitpodv1.DeleteHostAuthenticationTokenResponse, error) {
	c, ht, err := s.caller(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	if err := ht.Delete(ctx, c, req.GetId()); err != nil {
		return nil, err
	}
	return &gitpodv1.DeleteHostAuthenticationTokenResponse{}, nil
}

// UpdateHostAuthenticationTokenMetadata records the token's SCM account;
// the token's runner (or an organization admin) may.
func (s *RunnerConfigurationService) UpdateHostAuthenticationTokenMetadata(ctx context.Context, req *gitpodv1.UpdateHostAuthenticationTokenMetadataRequest) (*gitpodv1.UpdateHostAuthenticationTokenMetadataResponse, error) {
	c, ht, err := s.caller(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	if _, err := ht.UpdateMetadata(ctx, c, req.GetRunnerId(), req.GetId(), req.ExternalUserId); err != nil {
		return nil, err
	}
	return &gitpodv1.UpdateHostAuthenticationTokenMetadataResponse{}, nil
}

func kindFromProto(p gitpodv1.Principal) (storage.PrincipalKind, bool) {
	for k, v := range kindToProto {
		if v == p {
			return k, true
		}
	}
	return "", false
}

func hostTokenToProto(t hosttoken.Token) *gitpodv1.HostAuthenticationToken {
	out := &gitpodv1.HostAuthenticationToken{
		Id: t.ID, RunnerId: t.RunnerID, Host: t.Host, ExpiresAt: ts(t.ExpiresAt), IntegrationId: t.IntegrationID,
		Scopes: t.Scopes, Subject: &gitpodv1.Subject{Id: t.Subject.ID, Principal: principalToProto(t.Subject.Kind)},
	}
	switch t.Source {
	case storage.HostTokenSourceOAuth:
		out.Source = gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH
	case storage.HostTokenSourcePAT:
		out.Source = gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT
	}
	if t.Subject.Kind == storage.PrincipalUser {
		out.UserId = t.Subject.ID
	}
	if r := t.Refresh; !r.RefreshedAt.IsZero() || r.LastError != "" || r.Failures > 0 {
		out.Refresh = &gitpodv1.HostAuthenticationTokenRefreshStatus{LastRefreshedAt: ts(r.RefreshedAt),
			LastError: r.LastError, ConsecutiveFailures: int32(min(r.Failures, 1<<30))}
	}
	return out
}
