package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Audit action of DeleteUser; SetSuspended records principal.disable and
// principal.enable like PrincipalService.
const ActionPrincipalDelete = "principal.delete"

// suspendRevocationTTL is how long the revocation of a suspended or
// deleted user's access tokens is kept: longer than any access token sts
// issues can live.
const suspendRevocationTTL = 366 * 24 * time.Hour

// managedUser loads the user userID on behalf of an administrator. A
// caller who administers no organization is refused before any lookup; a
// user of another organization, or a principal that is not a user, is
// reported as not found, so the answer tells nothing about other
// organizations.
func (h *Handler) managedUser(ctx context.Context, id *Identity, userID, verb string) (storage.Principal, error) {
	userID = storage.CanonicalID(userID)
	if userID == "" {
		return storage.Principal{}, sts.Errorf(sts.Invalid, "userId is required")
	}
	if !id.Allows(pat.ScopeAdmin) {
		return storage.Principal{}, sts.Errorf(sts.PermissionDenied, "cannot %s another user: needs an administrator of its organization", verb)
	}
	p, err := h.Store.GetPrincipal(ctx, userID)
	if err != nil {
		return storage.Principal{}, lookupErr(err, "user")
	}
	if p.Kind != storage.PrincipalUser {
		return storage.Principal{}, sts.Errorf(sts.NotFound, "user not found")
	}
	// The same organization rule as every sts.v1 service: its own
	// organization for an organization administrator, any for an
	// instance administrator; another organization's user reads as missing.
	if err := h.inOrg(ctx, id, p.OrgID, "user"); err != nil {
		return storage.Principal{}, err
	}
	return p, nil
}

// tokenOwner is the principal whose tokens a PAT request acts on: the
// caller when userID is empty or the caller's own, else a user the caller
// administers.
func (h *Handler) tokenOwner(ctx context.Context, id *Identity, userID, verb string) (storage.Principal, error) {
	userID = storage.CanonicalID(userID)
	if userID == "" || userID == id.PrincipalID {
		return h.principal(ctx, id)
	}
	return h.managedUser(ctx, id, userID, verb)
}

// GetUser returns the caller (user_id empty or its own, needs
// identity:read) or a user of the organization the caller administers.
func (s *UserService) GetUser(ctx context.Context, req *gitpodv1.GetUserRequest) (*gitpodv1.GetUserResponse, error) {
	id, err := require(ctx, pat.ScopeIdentityRead)
	if err != nil {
		return nil, err
	}
	p, err := s.h.tokenOwner(ctx, id, req.GetUserId(), "read")
	if err != nil {
		return nil, err
	}
	return &gitpodv1.GetUserResponse{User: userToProto(p)}, nil
}

// SetSuspended suspends or reactivates a user of the organization the
// caller administers (never the caller itself). Suspension disables the
// principal, so its PATs stop authenticating (at once here, within the PAT
// cache TTL on other replicas), and revokes every access token issued to
// it so far, so tokens derived from those PATs stop too, and every refresh
// family begun for it so far (a subject revocation, docs/security.md
// Reactivation enables the principal again; tokens and families
// revoked stay revoked.
func (s *UserService) SetSuspended(ctx context.Context, req *gitpodv1.SetSuspendedRequest) (*gitpodv1.SetSuspendedResponse, error) {
	id, p, err := s.h.otherUser(ctx, req.GetUserId(), "suspend")
	if err != nil {
		return nil, err
	}
	revs, err := s.h.revocations()
	if err != nil {
		return nil, err
	}
	if err := s.h.setDisabled(ctx, id, p, req.GetSuspended()); err != nil {
		return nil, err
	}
	if req.GetSuspended() {
		if err := s.h.revokeSubject(ctx, revs, p.ID, "user suspended"); err != nil {
			return nil, err
		}
	}
	s.h.PATs.ForgetOwner(p.ID)
	return &gitpodv1.SetSuspendedResponse{}, nil
}

// DeleteUser deletes a user of the organization the caller administers
// (never the caller itself): the principal is disabled and its access
// tokens revoked first, so nothing it holds works while the rest goes,
// then its PATs, the host tokens it is the subject of and finally the
// principal are deleted, as PrincipalService/DeletePrincipal does
// (docs/security.md ). A user a pool is bound to is refused
// first, as there.
func (s *UserService) DeleteUser(ctx context.Context, req *gitpodv1.DeleteUserRequest) (*gitpodv1.DeleteUserResponse, error) {
	id, p, err := s.h.otherUser(ctx, req.GetUserId(), "delete")
	if err != nil {
		return nil, err
	}
	revs, err := s.h.revocations()
	if err != nil {
		return nil, err
	}
	store, err := s.h.lifecycleStore()
	if err != nil {
		return nil, err
	}
	if err := refuseBound(ctx, store, p, false); err != nil {
		return nil, err
	}
	if !p.Disabled {
		if err := s.h.setDisabled(ctx, id, p, true); err != nil {
			return nil, err
		}
	}
	// As SetSuspended and DeletePrincipal: the PATs' cached checks hold the
	// owner as it was, so they go with the disable, and the PATs stop here
	// at once even if deleting them fails below.
	s.h.PATs.ForgetOwner(p.ID)
	if err := s.h.revokeSubject(ctx, revs, p.ID, "user deleted"); err != nil {
		return nil, err
	}
	if _, err := s.h.PATs.DeleteOwned(ctx, id.caller(), p.ID); err != nil {
		return nil, err
	}
	if err := deleteHostTokensOf(ctx, store, id.caller(), p, s.h.now()); err != nil {
		return nil, err
	}
	if err := deletePrincipalAudited(ctx, s.h.adminStore(), id.caller(), p, s.h.now()); err != nil {
		return nil, err
	}
	return &gitpodv1.DeleteUserResponse{}, nil
}

// setDisabled sets the disabled flag of target, as the call authorized it,
// and audits the change; a target whose standing changed since is left
// as it is (sameStanding).
func (h *Handler) setDisabled(ctx context.Context, id *Identity, target storage.Principal, disabled bool) error {
	principalID := target.ID
	var out storage.Principal
	update := func(p storage.Principal) (storage.Principal, error) {
		if err := sameStanding(target, p); err != nil {
			return p, err
		}
		p.Disabled, p.UpdatedAt = disabled, storage.Now(h.now())
		out = p
		return p, nil
	}
	action := ActionPrincipalEnable
	if disabled {
		action = ActionPrincipalDisable
	}
	// The change commits with its event, or not at all.
	return changeErr(changeAudited(ctx, h.adminStore(),
		func(tx storage.Tx) error { return tx.UpdatePrincipal(ctx, principalID, update) },
		func() error { return h.Store.UpdatePrincipal(ctx, principalID, update) },
		func() storage.AuditEvent {
			return id.caller().Event(h.now(), out.OrgID, action, "principal:"+out.ID, "success", "")
		}), "user")
}

// revocations is the store revocations are written to (the "sub:" rows
// and the refresh families they end); suspension fails closed without
// one.
func (h *Handler) revocations() (SubjectRevoker, error) {
	if r, ok := h.Store.(SubjectRevoker); ok {
		return r, nil
	}
	return nil, sts.Errorf(sts.Unavailable, "revocations unavailable")
}

// revokeSubject is a subject revocation of principalID, as RevokeSubject
// makes one: every access token issued to it so far is revoked and every
// refresh family begun for it so far ended, so reactivating it brings
// neither back (docs/security.md A-81).
func (h *Handler) revokeSubject(ctx context.Context, revs SubjectRevoker, principalID, reason string) error {
	now := h.now()
	_, err := RevokeSubject(ctx, revs, principalID, now, suspendRevocationTTL, now, reason)
	return err
}

// Preferences and dotfiles belong to Gitpod's user settings, which sts does
// not keep: their RPCs answer unimplemented, on purpose (docs/api.md).
// A new error each time: connect may attach metadata to the one returned.
func errNoPreferences() error {
	return connect.NewError(connect.CodeUnimplemented, errors.New("preferences are not stored by sts"))
}

func errNoDotfiles() error {
	return connect.NewError(connect.CodeUnimplemented, errors.New("dotfiles configurations are not stored by sts"))
}

// SetPreference answers unimplemented: preferences are not stored by sts.
func (s *UserService) SetPreference(context.Context, *gitpodv1.SetPreferenceRequest) (*gitpodv1.SetPreferenceResponse, error) {
	return nil, errNoPreferences()
}

// GetPreference answers unimplemented: preferences are not stored by sts.
func (s *UserService) GetPreference(context.Context, *gitpodv1.GetPreferenceRequest) (*gitpodv1.GetPreferenceResponse, error) {
	return nil, errNoPreferences()
}

// ListPreferences answers unimplemented: preferences are not stored by sts.
func (s *UserService) ListPreferences(context.Context, *gitpodv1.ListPreferencesRequest) (*gitpodv1.ListPreferencesResponse, error) {
	return nil, errNoPreferences()
}

// DeletePreference answers unimplemented: preferences are not stored by sts.
func (s *UserService) DeletePreference(context.Context, *gitpodv1.DeletePreferenceRequest) (*gitpodv1.DeletePreferenceResponse, error) {
	return nil, errNoPreferences()
}

// GetDotfilesConfiguration answers unimplemented: sts stores no dotfiles.
func (s *UserService) GetDotfilesConfiguration(context.Context, *gitpodv1.GetDotfilesConfigurationRequest) (*gitpodv1.GetDotfilesConfigurationResponse, error) {
	return nil, errNoDotfiles()
}

// SetDotfilesConfiguration answers unimplemented: sts stores no dotfiles.
func (s *UserService) SetDotfilesConfiguration(context.Context, *gitpodv1.SetDotfilesConfigurationRequest) (*gitpodv1.SetDotfilesConfigurationResponse, error) {
	return nil, errNoDotfiles()
}

// otherUser is the user a SetSuspended or DeleteUser call acts on: never
// the caller itself, a user of the organization the caller administers,
// and not an instance administrator unless the caller is one
// (docs/authorization.md).
func (h *Handler) otherUser(ctx context.Context, userID, verb string) (*Identity, storage.Principal, error) {
	id, ok := IdentityFrom(ctx)
	if !ok {
		return nil, storage.Principal{}, errNoCredential
	}
	userID = storage.CanonicalID(userID)
	if userID == id.PrincipalID {
		return nil, storage.Principal{}, sts.Errorf(sts.Invalid, "cannot %s yourself", verb)
	}
	p, err := h.managedUser(ctx, id, userID, verb)
	if err != nil {
		return nil, storage.Principal{}, err
	}
	if err := h.mayActOnPrincipal(ctx, id, p); err != nil {
		return nil, storage.Principal{}, err
	}
	return id, p, nil
}
