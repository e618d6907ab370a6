package api

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// mayMintPAT is the rule for creating a PAT or giving one a new secret
// and expiry (docs/authorization.md): the credential must itself be a PAT
// (an access token derived from something else would let a short-lived
// credential mint a long-lived one), and the new expiry must not pass the
// credential's own, so a PAT never outlives what authorised it. A PAT
// regenerating itself (selfID is the target) rotates rather than extends
// anything: its old secret dies in the same write. Administrators
// (sts:admin) decide lifetimes and pass both checks, but an access token
// holding sts:admin decides them only up to bound, the credential it was
// drawn from ([Handler.mintBound], docs/security.md T-193).
func mayMintPAT(id *Identity, bound, exp time.Time, selfID string) error {
	if id.Allows(pat.ScopeAdmin) {
		if !bound.IsZero() && exp.After(bound) {
			return sts.Errorf(sts.PermissionDenied, "the token would outlive the credential the administrator's access token was drawn from (expires %s)", bound.UTC().Format(time.RFC3339))
		}
		return nil
	}
	if id.Credential != CredentialPAT {
		return sts.Errorf(sts.PermissionDenied, "personal access tokens can be created, regenerated or given new scopes only with a personal access token")
	}
	if selfID != "" && selfID == id.TokenID {
		return nil
	}
	if !id.ExpiresAt.IsZero() && exp.After(id.ExpiresAt) {
		return sts.Errorf(sts.PermissionDenied, "the token would outlive the credential creating or widening it (expires %s)", id.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// mayHoldAdmin is the rule for a PAT that holds sts:admin after a create,
// regenerate or widening (scopes are its scopes then): only a PAT may
// mint one (docs/security.md T-193). Such a PAT decides lifetimes, so an
// access token bounded by mintBound that created one within its bound, or
// gave one a new secret, would reach through it, in a second call, a PAT
// of any lifetime for anyone: the bound would hold for one hop only.
func mayHoldAdmin(id *Identity, scopes []string) error {
	if id.Credential != CredentialPAT && pat.Allows(scopes, pat.ScopeAdmin) {
		return sts.Errorf(sts.PermissionDenied, "a personal access token holding %s can be created, regenerated or given new scopes only with a personal access token", pat.ScopeAdmin)
	}
	return nil
}

// mayRegenerate is the guard of a regenerate on the stored record, in its
// transaction: a PAT holding sts:admin is given a new secret and expiry
// only with a PAT (mayHoldAdmin).
func mayRegenerate(id *Identity) pat.Guard {
	return func(p storage.PAT) error { return mayHoldAdmin(id, p.Scopes) }
}

// mintBound is the latest expiry a PAT that id mints may have when id is
// an access token holding sts:admin (docs/security.md T-193): the expiry
// of the PAT it was exchanged from (pat_id, read now), so a 2-minute
// token handed to a job cannot turn into a secret outliving that PAT;
// for one drawn from no PAT of its own (a client's, a pool's, one an
// exchange token bought) its own expiry, as for a PAT
// credential without sts:admin. Zero, no bound, for any other caller:
// an administrator's PAT decides lifetimes, and mayMintPAT judges the
// rest by the credential alone.
func (h *Handler) mintBound(ctx context.Context, id *Identity) (time.Time, error) {
	if id.Credential != CredentialAccessToken || !id.Allows(pat.ScopeAdmin) {
		return time.Time{}, nil
	}
	if id.Claims == nil || id.Claims.PATID == "" {
		return id.ExpiresAt, nil
	}
	p, err := h.PATs.Get(ctx, id.PrincipalID, id.Claims.PATID)
	if err != nil && sts.ErrorCode(err) == sts.NotFound {
		return time.Time{}, sts.Errorf(sts.PermissionDenied, "the personal access token this access token was drawn from is gone")
	}
	if err != nil {
		return time.Time{}, err
	}
	return p.ExpiresAt, nil
}

// mayWiden is the guard of a PAT update to scopes: giving the stored PAT
// a scope it did not hold (pat.Allows) follows mayMintPAT with the PAT's
// own expiry, since for what it gains the PAT is a new one
// (docs/authorization.md, Personal access tokens). Otherwise a derived
// access token with tokens:write would widen a long-lived read-only PAT to
// full access, a year-long secret it could not have minted. Keeping or
// narrowing the scopes is not minting. It runs on the stored record, in
// the update's transaction; bound is mintBound's, read before it.
func mayWiden(id *Identity, bound time.Time, scopes []string) pat.Guard {
	return func(p storage.PAT) error {
		for _, sc := range scopes {
			if !pat.Allows(p.Scopes, sc) {
				if err := mayHoldAdmin(id, scopes); err != nil {
					return err
				}
				return mayMintPAT(id, bound, p.ExpiresAt, "")
			}
		}
		return nil
	}
}

// Two administrator roles (docs/authorization.md):
//
//   - An organization administrator is any credential holding sts:admin.
//     It administers its own organization only: every sts.v1 call takes
//     the organization from the request or from the record it names and
//     compares it with the caller's. A record of another organization
//     answers not_found, exactly as a missing one does, so IDs of other
//     organizations cannot be probed.
//   - An instance administrator holds sts:admin AND is a principal the
//     instance trusts: its stored instance_admin flag (set by the
//     bootstrap and `sts principal grant-instance-admin`) or its ID in
//     the configuration (Handler.InstanceAdmins). It may act on every
//     organization and alone may create organizations and manage signing
//     keys. No API call sets the flag.

// errNeedsInstanceAdmin answers calls reserved to instance administrators.
var errNeedsInstanceAdmin = sts.Errorf(sts.PermissionDenied, "only an instance administrator may do this")

// isInstanceAdmin reports whether the caller is an instance administrator.
// A PAT's principal comes from authentication (its cache, so a revoked
// flag takes effect within the PAT cache TTL); an access token's is read.
func (h *Handler) isInstanceAdmin(ctx context.Context, id *Identity) (bool, error) {
	if !id.Allows(pat.ScopeAdmin) {
		return false, nil
	}
	if slices.Contains(h.InstanceAdmins, id.PrincipalID) {
		return true, nil
	}
	p, err := h.principal(ctx, id)
	if err != nil {
		return false, err
	}
	return p.InstanceAdmin && !p.Disabled && p.OrgID == id.OrgID, nil
}

// requireInstanceAdmin returns the caller if it is an instance
// administrator.
func (h *Handler) requireInstanceAdmin(ctx context.Context) (*Identity, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	ok, err := h.isInstanceAdmin(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNeedsInstanceAdmin
	}
	return id, nil
}

// inOrg allows an administrator to act on a record of orgID: its own
// organization, or any for an instance administrator. Otherwise it
// answers "<what> not found", the answer for a missing record.
func (h *Handler) inOrg(ctx context.Context, id *Identity, orgID, what string) error {
	if orgID != "" && orgID == id.OrgID {
		return nil
	}
	ok, err := h.isInstanceAdmin(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return sts.Errorf(sts.NotFound, "%s not found", what)
	}
	return nil
}

// listOrg is the organization a list call reads: the requested one if
// the caller may see it; when none is requested, every organization for
// an instance administrator ("") and its own for anyone else.
func (h *Handler) listOrg(ctx context.Context, id *Identity, orgID string) (string, error) {
	if orgID == "" {
		ok, err := h.isInstanceAdmin(ctx, id)
		if err != nil || ok {
			return "", err
		}
		return id.OrgID, nil
	}
	return orgID, h.inOrg(ctx, id, orgID, "organization")
}

// mayActOnPrincipal extends inOrg for principal records: an organization
// administrator may not disable, or mint an exchange token or a PAT for,
// an instance administrator of its organization (that would hand it the
// instance role's principal).
func (h *Handler) mayActOnPrincipal(ctx context.Context, id *Identity, p storage.Principal) error {
	if err := h.inOrg(ctx, id, p.OrgID, "principal"); err != nil {
		return err
	}
	return h.mayActAs(ctx, id, p)
}

// mayActAs is the instance half of mayActOnPrincipal, for a principal
// whose organization the caller has already been checked against: only
// an instance administrator acts on, or issues tokens as, an instance
// administrator (docs/authorization.md, Roles).
func (h *Handler) mayActAs(ctx context.Context, id *Identity, p storage.Principal) error {
	if !h.instanceRole(p) {
		return nil
	}
	ok, err := h.isInstanceAdmin(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return errNeedsInstanceAdmin
	}
	return nil
}

// instanceRole reports whether p is an instance administrator, by its row
// or by the configuration.
func (h *Handler) instanceRole(p storage.Principal) bool {
	return p.InstanceAdmin || slices.Contains(h.InstanceAdmins, p.ID)
}

// notInstanceAdmin is the guard a write made for a caller who is not an
// instance administrator runs on the principal's row it holds: the
// instance role granted since the caller was judged refuses the write
// (docs/security.md ).
func (h *Handler) notInstanceAdmin(p storage.Principal) error {
	if h.instanceRole(p) {
		return sts.Errorf(sts.FailedPrecondition, "principal changed concurrently; retry")
	}
	return nil
}

// mayBind refuses binding a record that issues tokens as its principal (a
// pool, a client) to a principal the caller may not act as (mayActAs):
// a pool with an issuer of the caller's own, or a client whose secret the
// caller holds, bound to an instance administrator would hand an
// organization administrator the instance role's principal, as an
// exchange token for it would (docs/authorization.md, Roles). A principal
// that does not exist, or of an organization the caller does not
// administer, is left to the lifecycle to report as missing: answering
// permission_denied would tell another organization's administrator that
// the ID is an instance administrator's.
func (h *Handler) mayBind(ctx context.Context, id *Identity, principalID string) error {
	if principalID == "" {
		return nil
	}
	p, err := h.Store.GetPrincipal(ctx, principalID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return lookupErr(err, "principal")
	}
	if h.inOrg(ctx, id, p.OrgID, "principal") != nil {
		return nil // not the caller's to bind: the lifecycle answers not_found
	}
	return h.mayActAs(ctx, id, p)
}

// sameStanding refuses a write to principal cur, read where the write
// happens, when its organization or its instance role is no longer what
// the call was authorized on (p, read before): an operator's
// `sts principal grant-instance-admin` that committed in between would
// otherwise let an organization administrator disable, suspend or
// delete the instance administrator it was just refused
// (docs/security.md A-95). The caller reads it again and is answered by
// mayActOnPrincipal.
func sameStanding(p, cur storage.Principal) error {
	if cur.OrgID != p.OrgID || cur.InstanceAdmin != p.InstanceAdmin {
		return sts.Errorf(sts.FailedPrecondition, "principal changed concurrently; retry")
	}
	return nil
}
