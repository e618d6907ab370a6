package api

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// UserService implements gitpod.v1.UserService: the authenticated user and
// their personal access tokens. Callers manage their own tokens;
// administrators of an organization (administers) also read, suspend and
// delete its users and list or create their tokens (userlifecycle.go).
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

// CreatePersonalAccessToken creates a token. Needs tokens:write. The owner
// is the caller, or user_id when the caller administers that user's
// organization and may act on that user (not an instance administrator,
// unless the caller is one). Scopes come from the sts scopes field or, in Gitpod's
// request shape, from read_only (pat.RequestedScopes); either way the new
// token's scopes must be ones the caller holds (no escalation). The secret
// is in this response only.
func (s *UserService) CreatePersonalAccessToken(ctx context.Context, req *gitpodv1.CreatePersonalAccessTokenRequest) (*gitpodv1.CreatePersonalAccessTokenResponse, error) {
	id, err := require(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	owner, err := s.h.tokenOwner(ctx, id, req.GetUserId(), "create a token for")
	if err != nil {
		return nil, err
	}
	if owner.ID != id.PrincipalID {
		// A PAT owned by an instance administrator hands its holder the
		// instance role's principal, as an exchange token for it would
		// (docs/authorization.md, Roles).
		if err := s.h.mayActOnPrincipal(ctx, id, owner); err != nil {
			return nil, err
		}
		// Judged again on the owner's row as the PAT is written: a grant
		// of the instance role since would hand the new PAT's holder that
		// role (docs/security.md A-96).
		ctx = pat.WithOwnerGuard(ctx, func(cur storage.Principal) error { return sameStanding(owner, cur) })
	}
	exp, err := expiry(s.h.now(), req.GetExpiresAt(), req.GetValidFor())
	if err != nil {
		return nil, err
	}
	bound, err := s.h.mintBound(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := mayMintPAT(id, bound, exp, ""); err != nil {
		return nil, err
	}
	scopes, err := pat.RequestedScopes(req.GetScopes(), req.GetReadOnly())
	if err != nil {
		return nil, err
	}
	for _, sc := range scopes {
		if pat.KnownScope(sc) && !id.Allows(sc) {
			if sc == pat.ScopeFull && len(req.GetScopes()) == 0 {
				return nil, sts.Errorf(sts.PermissionDenied, "cannot grant full access the caller does not hold: set readOnly or scopes")
			}
			return nil, sts.Errorf(sts.PermissionDenied, "cannot grant scope %s the caller does not hold", sc)
		}
	}
	if err := mayHoldAdmin(id, scopes); err != nil {
		return nil, err
	}
	p, secret, err := s.h.PATs.Create(ctx, id.caller(), pat.CreateInput{
		OwnerID: owner.ID, Description: req.GetDescription(), Scopes: scopes, ExpiresAt: exp,
	})
	if err != nil {
		return nil, err
	}
	return &gitpodv1.CreatePersonalAccessTokenResponse{PersonalAccessToken: patToProto(p, owner.Kind), Token: secret}, nil
}

// ListPersonalAccessTokens lists tokens oldest first, one page at a time
// (pagination may also come from the query string: pagination.go).
// filter.userIds may name only the caller unless the caller administers
// that user's organization. Needs tokens:read.
func (s *UserService) ListPersonalAccessTokens(ctx context.Context, req *gitpodv1.ListPersonalAccessTokensRequest) (*gitpodv1.ListPersonalAccessTokensResponse, error) {
	id, err := require(ctx, pat.ScopeTokensRead)
	if err != nil {
		return nil, err
	}
	ids := req.GetFilter().GetUserIds()
	if len(ids) > 1 {
		return nil, sts.Errorf(sts.Invalid, "filter.userIds: at most one user id")
	}
	var want string
	if len(ids) == 1 {
		want = ids[0]
	}
	owner, err := s.h.tokenOwner(ctx, id, want, "list the tokens of")
	if err != nil {
		return nil, err
	}
	pg := req.GetPagination()
	list, next, err := s.h.PATs.List(ctx, owner.ID, pg.GetToken(), int(pg.GetPageSize()))
	if err != nil {
		return nil, err
	}
	out := &gitpodv1.ListPersonalAccessTokensResponse{Pagination: &gitpodv1.PaginationResponse{NextToken: next}}
	for _, p := range list {
		out.PersonalAccessTokens = append(out.PersonalAccessTokens, patToProto(p, owner.Kind))
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
	p, err := s.h.PATs.Get(ctx, id.PrincipalID, storage.CanonicalID(req.GetPersonalAccessTokenId()))
	if err != nil {
		return nil, err
	}
	return &gitpodv1.GetPersonalAccessTokenResponse{Pat: patToProto(p, id.Kind)}, nil
}

// UpdatePersonalAccessToken changes description and/or scopes. Needs
// tokens:write, and the caller must hold every scope of the token and
// every new scope; adding a scope the token did not hold is minting
// (mayWiden).
func (s *UserService) UpdatePersonalAccessToken(ctx context.Context, req *gitpodv1.UpdatePersonalAccessTokenRequest) (*gitpodv1.UpdatePersonalAccessTokenResponse, error) {
	id, err := require(ctx, pat.ScopeTokensWrite)
	if err != nil {
		return nil, err
	}
	var in pat.UpdateInput
	if req.Description != nil {
		in.Description = req.Description
	}
	guards := []pat.Guard{pat.HeldBy(id.Scopes)}
	if req.Scopes != nil {
		scopes := req.GetScopes().GetScopes()
		for _, sc := range scopes {
			if pat.KnownScope(sc) && !id.Allows(sc) {
				return nil, sts.Errorf(sts.PermissionDenied, "cannot grant scope %s the caller does not hold", sc)
			}
		}
		in.Scopes = &scopes
		bound, err := s.h.mintBound(ctx, id)
		if err != nil {
			return nil, err
		}
		guards = append(guards, mayWiden(id, bound, scopes))
	}
	p, err := s.h.PATs.Update(ctx, id.caller(), id.PrincipalID, storage.CanonicalID(req.GetPersonalAccessTokenId()), in, guards...)
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
	exp, err := expiry(s.h.now(), req.GetExpiresAt(), req.GetValidFor())
	if err != nil {
		return nil, err
	}
	bound, err := s.h.mintBound(ctx, id)
	if err != nil {
		return nil, err
	}
	patID := storage.CanonicalID(req.GetPersonalAccessTokenId())
	if err := mayMintPAT(id, bound, exp, patID); err != nil {
		return nil, err
	}
	p, secret, err := s.h.PATs.Regenerate(ctx, id.caller(), id.PrincipalID, patID, exp, pat.HeldBy(id.Scopes), mayRegenerate(id))
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
	if err := s.h.PATs.Delete(ctx, id.caller(), id.PrincipalID, storage.CanonicalID(req.GetPersonalAccessTokenId()), pat.HeldBy(id.Scopes)); err != nil {
		return nil, err
	}
	return &gitpodv1.DeletePersonalAccessTokenResponse{}, nil
}

// expiry resolves exactly one of expires_at and valid_for. Each must be a
// value the proto3 JSON mapping can carry (timestamp, validDuration): the
// binary protocols deliver any seconds and nanos, which AsTime and
// AsDuration would normalize or saturate into some other expiry, while
// Connect JSON refuses the same value as invalid_argument (docs/api.md).
func expiry(now time.Time, at *timestamppb.Timestamp, d *durationpb.Duration) (time.Time, error) {
	switch {
	case at != nil && d != nil:
		return time.Time{}, sts.Errorf(sts.Invalid, "set expiresAt or validFor, not both")
	case at != nil:
		if err := timestamp("expiresAt", at); err != nil {
			return time.Time{}, err
		}
		return at.AsTime(), nil
	case d != nil:
		if err := validDuration("validFor", d); err != nil {
			return time.Time{}, err
		}
		return now.Add(d.AsDuration()), nil
	}
	return time.Time{}, sts.Errorf(sts.Invalid, "expiry required: set expiresAt or validFor")
}

// validDuration checks a Duration against the proto3 range (±315576000000
// seconds, nanos in (-1e9, 1e9) of the seconds' sign); JSON input was
// already range-checked by protojson, binary input was not.
func validDuration(field string, d *durationpb.Duration) error {
	if err := d.CheckValid(); err != nil {
		return sts.Errorf(sts.Invalid, "%s is not a valid duration (at most 315576000000s either way, seconds and nanos of one sign)", field)
	}
	return nil
}
