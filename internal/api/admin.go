package api

import (
	"context"
	"errors"
	"strings"
	"time"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// DefaultTier is the tier of an organization created without one.
const DefaultTier = "free"

const maxNameLen = sts.MaxNameBytes

// OrganizationService implements sts.v1.OrganizationService. Creating an
// organization needs an instance administrator; an organization
// administrator (sts:admin) reads its own organization only.
type OrganizationService struct{ h *Handler }

var _ stsv1connect.OrganizationServiceHandler = (*OrganizationService)(nil)

// CreateOrganization creates an organization.
func (s *OrganizationService) CreateOrganization(ctx context.Context, req *stsv1.CreateOrganizationRequest) (*stsv1.CreateOrganizationResponse, error) {
	id, err := s.h.requireInstanceAdmin(ctx)
	if err != nil {
		return nil, err
	}
	o, err := CreateOrganization(ctx, s.h.adminStore(), id.caller(), req.GetName(), req.GetTier(), s.h.now())
	if err != nil {
		return nil, err
	}
	return &stsv1.CreateOrganizationResponse{Organization: orgToProto(o)}, nil
}

// GetOrganization returns one organization.
func (s *OrganizationService) GetOrganization(ctx context.Context, req *stsv1.GetOrganizationRequest) (*stsv1.GetOrganizationResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	if err := s.h.inOrg(ctx, id, req.GetOrganizationId(), "organization"); err != nil {
		return nil, err
	}
	o, err := s.h.Store.GetOrganization(ctx, req.GetOrganizationId())
	if err != nil {
		return nil, lookupErr(err, "organization")
	}
	return &stsv1.GetOrganizationResponse{Organization: orgToProto(o)}, nil
}

// ListOrganizations lists every organization to an instance
// administrator, and its own to an organization administrator.
func (s *OrganizationService) ListOrganizations(ctx context.Context, _ *stsv1.ListOrganizationsRequest) (*stsv1.ListOrganizationsResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	only, err := s.h.listOrg(ctx, id, "")
	if err != nil {
		return nil, err
	}
	list, err := s.h.Store.ListOrganizations(ctx)
	if err != nil {
		return nil, lookupErr(err, "organizations")
	}
	out := &stsv1.ListOrganizationsResponse{}
	for _, o := range list {
		if only == "" || o.ID == only {
			out.Organizations = append(out.Organizations, orgToProto(o))
		}
	}
	return out, nil
}

// PrincipalService implements sts.v1.PrincipalService. Every method needs
// sts:admin and acts within the caller's organization (any, for an
// instance administrator).
type PrincipalService struct{ h *Handler }

var _ stsv1connect.PrincipalServiceHandler = (*PrincipalService)(nil)

// CreatePrincipal creates a principal in an existing organization.
func (s *PrincipalService) CreatePrincipal(ctx context.Context, req *stsv1.CreatePrincipalRequest) (*stsv1.CreatePrincipalResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	kind, ok := kindFromAdmin(req.GetKind())
	if !ok {
		return nil, sts.Errorf(sts.Invalid, "kind required")
	}
	if err := s.h.inOrg(ctx, id, req.GetOrganizationId(), "organization"); err != nil {
		return nil, err
	}
	if err := checkRunnerKeyOnCreate(kind, req.GetRunnerPublicKey()); err != nil {
		return nil, err
	}
	if len(req.GetRunnerPublicKey()) > 0 && req.GetOrganizationId() != id.OrgID {
		// A runner's key is registered by its organization's own
		// administrators (sameOrgAdmin, as SetRunnerPublicKey): the vault
		// seals that organization's host-token values to it
		// (docs/security.md A-77).
		return nil, sts.Errorf(sts.PermissionDenied, "only an administrator of the runner's organization registers its public key: create the runner without runner_public_key")
	}
	p, err := CreatePrincipal(ctx, s.h.adminStore(), id.caller(), req.GetOrganizationId(), kind, req.GetName(), req.GetEmail(), s.h.now())
	if err != nil {
		return nil, err
	}
	if err := s.h.setRunnerKeyOnCreate(ctx, id, p, req.GetRunnerPublicKey()); err != nil {
		return nil, err
	}
	return &stsv1.CreatePrincipalResponse{Principal: principalToAdmin(p)}, nil
}

// GetPrincipal returns one principal.
func (s *PrincipalService) GetPrincipal(ctx context.Context, req *stsv1.GetPrincipalRequest) (*stsv1.GetPrincipalResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	p, err := s.h.Store.GetPrincipal(ctx, storage.CanonicalID(req.GetPrincipalId()))
	if err != nil {
		return nil, lookupErr(err, "principal")
	}
	if err := s.h.inOrg(ctx, id, p.OrgID, "principal"); err != nil {
		return nil, err
	}
	return &stsv1.GetPrincipalResponse{Principal: principalToAdmin(p)}, nil
}

// ListPrincipals lists the principals of one organization.
func (s *PrincipalService) ListPrincipals(ctx context.Context, req *stsv1.ListPrincipalsRequest) (*stsv1.ListPrincipalsResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	if req.GetOrganizationId() == "" {
		return nil, sts.Errorf(sts.Invalid, "organization_id required")
	}
	if err := s.h.inOrg(ctx, id, req.GetOrganizationId(), "organization"); err != nil {
		return nil, err
	}
	list, err := s.h.Store.ListPrincipals(ctx, req.GetOrganizationId())
	if err != nil {
		return nil, lookupErr(err, "principals")
	}
	out := &stsv1.ListPrincipalsResponse{}
	for _, p := range list {
		out.Principals = append(out.Principals, principalToAdmin(p))
	}
	return out, nil
}

// SetPrincipalDisabled disables or re-enables a principal, never disabling
// the caller itself. Its PATs stop authenticating within the PAT cache TTL.
func (s *PrincipalService) SetPrincipalDisabled(ctx context.Context, req *stsv1.SetPrincipalDisabledRequest) (*stsv1.SetPrincipalDisabledResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	target, err := s.h.Store.GetPrincipal(ctx, storage.CanonicalID(req.GetPrincipalId()))
	if err != nil {
		return nil, lookupErr(err, "principal")
	}
	if err := s.h.mayActOnPrincipal(ctx, id, target); err != nil {
		return nil, err
	}
	if req.GetDisabled() && target.ID == id.PrincipalID {
		// As UserService/SetSuspended: disabling itself would end every
		// credential the caller holds and could leave its organization
		// with no administrator; an organization always keeps the
		// administrator who acted (docs/security.md A-83).
		return nil, sts.Errorf(sts.Invalid, "cannot disable yourself")
	}
	var out storage.Principal
	update := func(p storage.Principal) (storage.Principal, error) {
		if err := sameStanding(target, p); err != nil {
			return p, err
		}
		p.Disabled, p.UpdatedAt = req.GetDisabled(), storage.Now(s.h.now())
		out = p
		return p, nil
	}
	action := ActionPrincipalEnable
	if req.GetDisabled() {
		action = ActionPrincipalDisable
	}
	// The change commits with its event, or not at all.
	err = changeAudited(ctx, s.h.adminStore(),
		func(tx storage.Tx) error { return tx.UpdatePrincipal(ctx, target.ID, update) },
		func() error { return s.h.Store.UpdatePrincipal(ctx, target.ID, update) },
		func() storage.AuditEvent {
			return id.caller().Event(s.h.now(), out.OrgID, action, "principal:"+out.ID, "success", "")
		})
	if err != nil {
		return nil, changeErr(err, "principal")
	}
	return &stsv1.SetPrincipalDisabledResponse{Principal: principalToAdmin(out)}, nil
}

// CreateExchangeToken mints a one-time exchange token for a principal.
// The token records what the caller's credential derives from, and
// neither it nor the access token it buys outlives that credential
// (docs/security.md A-50). Each call takes from the credential's
// rate-limit buckets, as GetIDToken does (limitCredential): the access
// token ExchangeToken signs for the exchange token is paid for here, by
// the credential asking for it, since ExchangeToken itself presents none
// and spends the exchange token atomically (docs/security.md A-57).
func (s *PrincipalService) CreateExchangeToken(ctx context.Context, req *stsv1.CreateExchangeTokenRequest) (*stsv1.CreateExchangeTokenResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	if d := req.GetValidFor(); d != nil {
		if err := validDuration("validFor", d); err != nil {
			return nil, err
		}
	}
	if err := s.h.limitCredential(ctx, id); err != nil {
		return nil, err
	}
	p, err := s.h.Store.GetPrincipal(ctx, storage.CanonicalID(req.GetPrincipalId()))
	if err != nil {
		return nil, lookupErr(err, "principal")
	}
	if err := s.h.mayActOnPrincipal(ctx, id, p); err != nil {
		return nil, err
	}
	src, err := exchangeSource(id, p.ID)
	if err != nil {
		return nil, err
	}
	// Judged again on the principal's row as the token is written: a grant
	// of the instance role since would hand the token's holder that role
	// (docs/security.md A-96).
	ctx = pat.WithOwnerGuard(ctx, func(cur storage.Principal) error { return sameStanding(p, cur) })
	t, secret, err := s.h.PATs.CreateExchangeToken(ctx, id.caller(), p.ID, req.GetValidFor().AsDuration(), src)
	if err != nil {
		return nil, err
	}
	return &stsv1.CreateExchangeTokenResponse{ExchangeToken: secret, ExpiresAt: ts(t.ExpiresAt)}, nil
}

// Audit actions of the organization and principal helpers.
const (
	ActionOrganizationCreate = "organization.create"
	ActionPrincipalCreate    = "principal.create"
	ActionPrincipalDisable   = "principal.disable"
	ActionPrincipalEnable    = "principal.enable"
)

// AdminStore is what the organization and principal helpers write: the
// records and, beside each change, its audit event.
type AdminStore interface {
	Store
	storage.AuditStore
}

// auditAdmin appends the event of one organization or principal change.
func auditAdmin(ctx context.Context, store storage.AuditStore, c pat.Caller, orgID, action, target string, now time.Time) error {
	return store.AppendAudit(ctx, c.Event(now, orgID, action, target, "success", ""))
}

// CreateOrganization validates and stores a new organization and its
// audit event; the CLI uses it too. If the event cannot be stored the
// organization is removed again: no change goes unaudited. Errors:
// [sts.Invalid], [sts.AlreadyExists], [sts.Unavailable].
func CreateOrganization(ctx context.Context, store AdminStore, c pat.Caller, name, tier string, now time.Time) (storage.Organization, error) {
	name, tier = strings.TrimSpace(name), strings.TrimSpace(tier)
	if name == "" || len(name) > maxNameLen {
		return storage.Organization{}, sts.Errorf(sts.Invalid, "name required (at most %d bytes)", maxNameLen)
	}
	if err := sts.CheckDisplayText("name", name); err != nil { // docs/security.md T-135
		return storage.Organization{}, err
	}
	if tier == "" {
		tier = DefaultTier
	}
	t := storage.Now(now)
	o := storage.Organization{ID: storage.NewID(), Name: name, Tier: tier, CreatedAt: t, UpdatedAt: t}
	ev := c.Event(now, o.ID, ActionOrganizationCreate, "organization:"+o.ID, "success", "")
	if err := createAudited(ctx, store, func(tx storage.Tx) error { return tx.CreateOrganization(ctx, o) },
		func() error { return store.CreateOrganization(ctx, o) },
		func() error {
			dctx, cancel := storage.Detach(ctx) // docs/security.md F-87
			defer cancel()
			return store.DeleteOrganization(dctx, o.ID)
		}, ev); err != nil {
		return storage.Organization{}, createErr(err, "organization")
	}
	return o, nil
}

// CreatePrincipal validates and stores a new principal in orgID and its
// audit event (removed again if the event cannot be stored); the CLI uses
// it too. Errors: [sts.Invalid], [sts.NotFound] (organization),
// [sts.Unavailable].
func CreatePrincipal(ctx context.Context, store AdminStore, c pat.Caller, orgID string, kind storage.PrincipalKind, name, email string, now time.Time) (storage.Principal, error) {
	name, email = strings.TrimSpace(name), strings.TrimSpace(email)
	switch {
	case !kind.Valid():
		return storage.Principal{}, sts.Errorf(sts.Invalid, "unknown principal kind")
	case name == "" || len(name) > maxNameLen:
		return storage.Principal{}, sts.Errorf(sts.Invalid, "name required (at most %d bytes)", maxNameLen)
	case len(email) > maxNameLen || (email != "" && !strings.Contains(email, "@")):
		return storage.Principal{}, sts.Errorf(sts.Invalid, "invalid email")
	}
	if err := sts.CheckDisplayText("name", name); err != nil { // docs/security.md T-135
		return storage.Principal{}, err
	}
	if _, err := store.GetOrganization(ctx, orgID); err != nil {
		return storage.Principal{}, lookupErr(err, "organization")
	}
	t := storage.Now(now)
	p := storage.Principal{ID: storage.NewID(), OrgID: orgID, Kind: kind, Name: name, Email: email, CreatedAt: t, UpdatedAt: t}
	ev := c.Event(now, orgID, ActionPrincipalCreate, "principal:"+p.ID, "success", "")
	// The organization is held by the unit of work that stores the
	// principal: its deletion comes after, and refuses it, or leaves
	// nothing here to store it in (docs/design.md#owners-held-while-their-rows-are-written, docs/security.md A-87).
	inTx := func(tx storage.Tx) error {
		if _, err := tx.LockOrganization(ctx, orgID); err != nil {
			return lookupErr(err, "organization")
		}
		return tx.CreatePrincipal(ctx, p)
	}
	if err := createAudited(ctx, store, inTx,
		func() error { return store.CreatePrincipal(ctx, p) },
		func() error {
			dctx, cancel := storage.Detach(ctx) // docs/security.md F-87
			defer cancel()
			return store.DeletePrincipal(dctx, p.ID)
		}, ev); err != nil {
		return storage.Principal{}, createErr(err, "principal")
	}
	return p, nil
}

// createAudited stores a record and its audit event in one transaction
// when the store offers a unit of work (serve's and the CLI's stores do;
// docs/design.md#audit). A store whose audit trail lives elsewhere
// (Handler.Audit) creates, appends, and deletes the record again when the
// event fails.
func createAudited(ctx context.Context, store AdminStore, inTx func(storage.Tx) error, create, undo func() error, ev storage.AuditEvent) error {
	if u, ok := store.(storage.UnitOfWork); ok {
		return storage.WithEvent(ctx, u, inTx, func() storage.AuditEvent { return ev })
	}
	if err := create(); err != nil {
		return err
	}
	if err := store.AppendAudit(ctx, ev); err != nil {
		_ = undo()
		return storage.EventNotStored{Err: err}
	}
	return nil
}

// changeAudited is createAudited for updates and deletes: change and the
// event ev returns (built after change, from what it read) commit in one
// transaction when the store offers a unit of work, so a failed event
// leaves nothing changed (docs/design.md#audit). Without one, plain
// changes and the event is appended after it. Map the error with
// changeErr.
func changeAudited(ctx context.Context, store storage.AuditStore, inTx func(storage.Tx) error, plain func() error, ev func() storage.AuditEvent) error {
	if u, ok := store.(storage.UnitOfWork); ok {
		return storage.WithEvent(ctx, u, inTx, ev)
	}
	if err := plain(); err != nil {
		return err
	}
	if err := store.AppendAudit(ctx, ev()); err != nil {
		return storage.EventNotStored{Err: err}
	}
	return nil
}

// changeErr maps changeAudited's error: an *sts.Error from an updater as
// is, an event that could not be stored Unavailable, storage sentinels as
// lookupErr.
func changeErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*sts.Error](err); ok {
		return se
	}
	return createErr(err, what)
}

// createErr maps createAudited's error.
func createErr(err error, what string) error {
	if _, ok := errors.AsType[storage.EventNotStored](err); ok {
		return sts.Wrap(sts.Unavailable, err, "audit unavailable")
	}
	return lookupErr(err, what)
}

// adminStore is Store with the audit trail beside it: Audit when set,
// else Store itself when it can append (in serve both are the same).
func (h *Handler) adminStore() AdminStore {
	if a, ok := h.Store.(AdminStore); ok {
		return a
	}
	return adminStore{Store: h.Store, AuditStore: h.Audit}
}

type adminStore struct {
	Store
	storage.AuditStore
}

// AppendAudit fails closed without an audit store: no change goes
// unaudited.
func (a adminStore) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if a.AuditStore == nil {
		return errors.New("no audit store")
	}
	return a.AuditStore.AppendAudit(ctx, events...)
}
