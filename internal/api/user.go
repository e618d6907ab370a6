package api

import (
	"context"
	"time"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/sts"
)

// UserService implements gitpod.v1.UserService: the authenticated user and
// their personal access tokens (gitpod.v1.UserService). Callers manage their own tokens;
// sts:admin callers may list another principal's.
type UserService struct {
	h *Handler
}

var _ gitpodv1connect.UserServiceHandler = (*UserService)(nil)

// GetAuthenticatedUser returns the calling principal. Needs identity:read.
func (s *UserService) GetAuthenticatedUser(ctx context.Context, _ *gitpodv1.GetAuthenticatedUserRequest) (*gitpodv1.GetAuthenticatedUserResponse, error) {
	id, err := require(ctx, pat.ScopeIdentityRead)
	if err != nil {
		return nil, err
	}
	p, err := s.h.principal(ctx, id)
	if err != nil {
		return nil, err
	}
	return &gitpodv1.GetAuthenticatedUserResponse{User: userToProto(p)}, nil
}

// CreatePersonalAccessToken creates a token owned by the caller. Needs
// tokens:write; the new token's scopes must be ones the caller holds (no
// escalation). The secret is in this response only.
func (s *UserService) CreatePersonalAccessToken(ctx context.Context, req *gitpodv1.CreatePersonalAccessTokenRequest) (*gitpodv1.CreatePersonalAccessTokenResponse, error) {
	id, err := require(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	exp, err := expiry(s.h.now(), req.GetExpiresAt() != nil, req.GetExpiresAt().AsTime(), req.GetValidFor() != nil, req.GetValidFor().AsDuration())
	if err != nil {
		return nil, err
	}
	for _, sc := range req.GetScopes() {
		if pat.KnownScope(sc) && !id.Allows(sc) {
			return nil, sts.Errorf(sts.PermissionDenied, "cannot grant scope %s the caller does not hold", sc)
		}
	}
	p, secret, err := s.h.PATs.Create(ctx, id.caller(), pat.CreateInput{
		OwnerID: id.PrincipalID, Description: req.GetDescription(), Scopes: req.GetScopes(), ExpiresAt: exp,
	})
	if err != nil {
		return nil, err
	}
	return &gitpodv1.CreatePersonalAccessTokenResponse{PersonalAccessToken: patToProto(p, id.Kind), Token: secret}, nil
}

// ListPersonalAccessTokens lists tokens oldest first with gitpod.v1 pagination.
// filter.userIds may name only the caller unless the caller has sts:admin.
// Needs tokens:read.
func (s *UserService) ListPersonalAccessTokens(ctx context.Context, req *gitpodv1.ListPersonalAccessTokensRequest) (*gitpodv1.ListPersonalAccessTokensResponse, error) {
	id, err := require(ctx, pat.ScopeTokensRead)
	if err != nil {
		return nil, err
	}
	owner := id.PrincipalID
	switch ids := req.GetFilter().GetUserIds(); {
	case len(ids) > 1:
		return nil, sts.Errorf(sts.Invalid, "at most one user id")
	case len(ids) == 1 && ids[0] != id.PrincipalID:
		if !id.Allows(pat.ScopeAdmin) {
			return nil, sts.Errorf(sts.PermissionDenied, "cannot list another user's tokens")
		}
		owner = ids[0]
	}
	pg := req.GetPagination()
	list, next, err := s.h.PATs.List(ctx, owner, pg.GetToken(), int(pg.GetPageSize()))
	if err != nil {
		return nil, err
	}
	kind := id.Kind
	if owner != id.PrincipalID {
		if p, err := s.h.Store.GetPrincipal(ctx, owner); err == nil {
			kind = p.Kind
		}
	}
	out := &gitpodv1.ListPersonalAccessTokensResponse{Pagination: &gitpodv1.PaginationResponse{NextToken: next}}
	for _, p := range list {
		out.PersonalAccessTokens = append(out.PersonalAccessTokens, patToProto(p, kind))
	}
	return out, nil
}

// GetPersonalAccessToken returns one of the caller's tokens. Needs
// tokens:read.
func (s *UserService) GetPersonalAccessToken(ctx context.Context, req *gitpodv1.GetPersonalAccessTokenRequest) (*gitpodv1.GetPersonalAccessTokenResponse, error) {
	id, err := require(ctx, pat.ScopeTokensRead)
	if err != nil {
		return nil, err
	}
	p, err := s.h.PATs.Get(ctx, id.PrincipalID, req.GetPersonalAccessTokenId())
	if err != nil {
		return nil, err
	}
	return &gitpodv1.GetPersonalAccessTokenResponse{Pat: patToProto(p, id.Kind)}, nil
}

// UpdatePersonalAccessToken changes description and/or scopes. Needs
// tokens:write, and the caller must hold every new scope.
func (s *UserService) UpdatePersonalAccessToken(ctx context.Context, req *gitpodv1.UpdatePersonalAccessTokenRequest) (*gitpodv1.UpdatePersonalAccessTokenResponse, error) {
	id, err := require(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	var in pat.UpdateInput
	if req.Description != nil {
		in.Description = req.Description
	}
	if req.Scopes != nil {
		scopes := req.GetScopes().GetScopes()
		for _, sc := range scopes {
			if pat.KnownScope(sc) && !id.Allows(sc) {
				return nil, sts.Errorf(sts.PermissionDenied, "cannot grant scope %s the caller does not hold", sc)
			}
		}
		in.Scopes = &scopes
	}
	p, err := s.h.PATs.Update(ctx, id.caller(), id.PrincipalID, req.GetPersonalAccessTokenId(), in)
	if err != nil {
		return nil, err
	}
	return &gitpodv1.UpdatePersonalAccessTokenResponse{PersonalAccessToken: patToProto(p, id.Kind)}, nil
}

// RegeneratePersonalAccessToken replaces the secret and expiry at once.
// Needs tokens:write.
func (s *UserService) RegeneratePersonalAccessToken(ctx context.Context, req *gitpodv1.RegeneratePersonalAccessTokenRequest) (*gitpodv1.RegeneratePersonalAccessTokenResponse, error) {
	id, err := require(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	exp, err := expiry(s.h.now(), req.GetExpiresAt() != nil, req.GetExpiresAt().AsTime(), req.GetValidFor() != nil, req.GetValidFor().AsDuration())
	if err != nil {
		return nil, err
	}
	p, secret, err := s.h.PATs.Regenerate(ctx, id.caller(), id.PrincipalID, req.GetPersonalAccessTokenId(), exp)
	if err != nil {
		return nil, err
	}
	return &gitpodv1.RegeneratePersonalAccessTokenResponse{PersonalAccessToken: patToProto(p, id.Kind), Token: secret}, nil
}

// DeletePersonalAccessToken deletes one of the caller's tokens. Needs
// tokens:write.
func (s *UserService) DeletePersonalAccessToken(ctx context.Context, req *gitpodv1.DeletePersonalAccessTokenRequest) (*gitpodv1.DeletePersonalAccessTokenResponse, error) {
	id, err := require(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	if err := s.h.PATs.Delete(ctx, id.caller(), id.PrincipalID, req.GetPersonalAccessTokenId()); err != nil {
		return nil, err
	}
	return &gitpodv1.DeletePersonalAccessTokenResponse{}, nil
}

// expiry resolves exactly one of expires_at and valid_for.
func expiry(now time.Time, hasAt bool, at time.Time, hasFor bool, d time.Duration) (time.Time, error) {
	switch {
	case hasAt && hasFor:
		return time.Time{}, sts.Errorf(sts.Invalid, "set expiresAt or validFor, not both")
	case hasAt:
		return at, nil
	case hasFor:
		return now.Add(d), nil
	}
	return time.Time{}, sts.Errorf(sts.Invalid, "expiry required: set expiresAt or validFor")
}
