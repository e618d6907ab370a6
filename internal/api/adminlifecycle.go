package api

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Audit actions of the organization lifecycle.
const (
	ActionOrganizationUpdate = "organization.update"
	ActionOrganizationDelete = "organization.delete"
)

// LifecycleStore is what updating and deleting organizations and
// principals reads and writes: besides the records and their audit
// events, the clients and pools that must be gone before their
// organization or principal goes, and the revocations that end a deleted
// principal's access tokens.
type LifecycleStore interface {
	AdminStore
	storage.ClientStore
	storage.TrustStore
	storage.RevocationStore
}

// lifecycleStore is the Handler's LifecycleStore; without one the calls
// answer unavailable (fail closed: nothing is deleted unchecked).
func (h *Handler) lifecycleStore() (LifecycleStore, error) {
	if s, ok := h.adminStore().(LifecycleStore); ok {
		return s, nil
	}
	if s, ok := h.Store.(lifecycleRecords); ok && h.Audit != nil {
		return lifecycle{s, h.Audit}, nil
	}
	return nil, sts.Errorf(sts.Unavailable, "storage unavailable")
}

type lifecycleRecords interface {
	Store
	storage.ClientStore
	storage.TrustStore
	storage.RevocationStore
}

type lifecycle struct {
	lifecycleRecords
	audit storage.AuditStore
}

func (l lifecycle) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	return l.audit.AppendAudit(ctx, events...)
}

func (l lifecycle) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	return l.audit.ListAudit(ctx, f)
}

func (l lifecycle) PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	return l.audit.PurgeAudit(ctx, before, limit)
}

// UpdateOrganization renames an organization or changes its tier (nil
// leaves a field as it is) and audits the change; the CLI uses it too.
// Errors: [sts.Invalid], [sts.NotFound], [sts.Unavailable].
func UpdateOrganization(ctx context.Context, store AdminStore, c pat.Caller, id string, name, tier *string, now time.Time) (storage.Organization, error) {
	if name != nil {
		n := strings.TrimSpace(*name)
		if n == "" || len(n) > maxNameLen {
			return storage.Organization{}, sts.Errorf(sts.Invalid, "name required (at most %d bytes)", maxNameLen)
		}
		if err := sts.CheckDisplayText("name", n); err != nil { // docs/security.md T-135
			return storage.Organization{}, err
		}
		name = &n
	}
	if tier != nil {
		t := strings.TrimSpace(*tier)
		if t == "" {
			t = DefaultTier
		}
		tier = &t
	}
	var out storage.Organization
	update := func(o storage.Organization) (storage.Organization, error) {
		if name != nil {
			o.Name = *name
		}
		if tier != nil {
			o.Tier = *tier
		}
		o.UpdatedAt = storage.Now(now)
		out = o
		return o, nil
	}
	// The change commits with its event, or not at all.
	err := changeAudited(ctx, store,
		func(tx storage.Tx) error { return tx.UpdateOrganization(ctx, id, update) },
		func() error { return store.UpdateOrganization(ctx, id, update) },
		func() storage.AuditEvent {
			return c.Event(now, out.ID, ActionOrganizationUpdate, "organization:"+out.ID, "success", orgUpdateDetail(name, tier))
		})
	if err != nil {
		return storage.Organization{}, changeErr(err, "organization")
	}
	return out, nil
}

// orgUpdateDetail names the fields an organization update sets, as
// client.update's detail does ("changed name,tier"; docs/design.md#audit).
func orgUpdateDetail(name, tier *string) string {
	var f []string
	if name != nil {
		f = append(f, "name")
	}
	if tier != nil {
		f = append(f, "tier")
	}
	if len(f) == 0 {
		return ""
	}
	return "changed " + strings.Join(f, ",")
}

// DeleteOrganization deletes an organization that holds no principal,
// client or pool any more and that the configuration file does not
// declare (declared holds the IDs it does), and audits it; the CLI uses
// it too. Errors: [sts.NotFound], [sts.FailedPrecondition] (not empty,
// or declared), [sts.Unavailable].
func DeleteOrganization(ctx context.Context, store LifecycleStore, c pat.Caller, id string, declared map[string]bool, now time.Time) error {
	o, err := store.GetOrganization(ctx, id)
	if err != nil {
		return lookupErr(err, "organization")
	}
	// The next start would create it again with the same ID, and the
	// deleted one's audit trail would read as the new one's to its
	// administrators, while the deletion's caller believes it gone
	// (docs/security.md A-111; pools likewise, A-59). Refused before
	// anything is written, as a pool the file declares.
	if declared[o.ID] {
		return sts.Errorf(sts.FailedPrecondition, "organization %s is declared in the configuration file; remove it from the file first, or the next start creates it again", o.ID)
	}
	ps, err := store.ListPrincipals(ctx, id)
	if err != nil {
		return lookupErr(err, "principals")
	}
	cs, err := store.ListClients(ctx, id)
	if err != nil {
		return lookupErr(err, "clients")
	}
	pools, err := store.ListPools(ctx)
	if err != nil {
		return lookupErr(err, "pools")
	}
	np := 0
	for _, p := range pools {
		if p.OrgID == id {
			np++
		}
	}
	if len(ps)+len(cs)+np > 0 {
		return sts.Errorf(sts.FailedPrecondition, "organization is not empty: %d principals, %d clients, %d pools; delete them first", len(ps), len(cs), np)
	}
	// The check above answers the common case with the counts; the
	// storage's DeleteOrganization checks again after it has taken the
	// row, so a principal, client or pool created meanwhile (holding the
	// organization, docs/design.md#owners-held-while-their-rows-are-written) refuses the deletion
	// (docs/security.md T-157).
	err = changeAudited(ctx, store,
		func(tx storage.Tx) error { return tx.DeleteOrganization(ctx, id) },
		func() error { return store.DeleteOrganization(ctx, id) },
		func() storage.AuditEvent {
			return c.Event(now, id, ActionOrganizationDelete, "organization:"+id, "success", "")
		})
	if errors.Is(err, storage.ErrNotEmpty) {
		return sts.Errorf(sts.FailedPrecondition, "organization is not empty: a principal, client or pool was created in it meanwhile; delete them first")
	}
	return changeErr(err, "organization")
}

// DeletePrincipal deletes p, of any kind: it is disabled and every access
// token issued to it so far revoked first, so nothing it holds works while
// the rest goes; then its PATs and the principal are deleted. A principal
// that clients or pools still issue tokens to is refused (refuseBound).
// The CLI uses it too.
// Errors: [sts.FailedPrecondition], [sts.NotFound], [sts.Unavailable].
func DeletePrincipal(ctx context.Context, store LifecycleStore, pats *pat.Service, c pat.Caller, p storage.Principal, now time.Time) error {
	if err := refuseBound(ctx, store, p, false); err != nil {
		return err
	}
	if !p.Disabled {
		err := store.UpdatePrincipal(ctx, p.ID, func(old storage.Principal) (storage.Principal, error) {
			if err := sameStanding(p, old); err != nil {
				return old, err
			}
			old.Disabled, old.UpdatedAt = true, storage.Now(now)
			return old, nil
		})
		if err != nil {
			return changeErr(err, "principal")
		}
	}
	// The PATs' cached checks hold the owner as it was: drop them with the
	// disable, so they stop here at once even if deleting them fails.
	pats.ForgetOwner(p.ID)
	t := storage.Now(now)
	if err := store.PutRevocation(ctx, storage.Revocation{
		ID: tokens.RevocationIDSubject(p.ID), IssuedBefore: t, Reason: "principal deleted",
		CreatedAt: t, ExpiresAt: t.Add(suspendRevocationTTL),
	}); err != nil {
		return sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	if _, err := pats.DeleteOwned(ctx, c, p.ID); err != nil {
		return err
	}
	if err := deleteHostTokensOf(ctx, store, c, p, now); err != nil {
		return err
	}
	return deletePrincipalAudited(ctx, store, c, p, now)
}

// boundReader reads what is bound to a principal: a LifecycleStore, or
// the deletion's storage.Tx.
type boundReader interface {
	ListClients(ctx context.Context, orgID string) ([]storage.Client, error)
	ListPoolsOfPrincipal(ctx context.Context, principalID string) ([]storage.Pool, error)
}

// refuseBound refuses, before anything changes, to delete p while a
// client or a pool is bound to it: their tokens are p's, and once p is
// gone they would name a principal that no longer exists, every later
// grant refused (docs/security.md A-86). The refusal names each client
// and each pool of p's organization, to delete or rebind first; a pool of
// another organization (the trust configuration file may bind one to p)
// is only counted, as the caller may not see it.
//
// It runs twice: on the store, before anything changes, for the early
// answer; and in the deletion's unit of work, after the principal's row
// is deleted there, where a client or pool bound meanwhile is seen (its
// create or rebinding held the principal, so the deletion waited for its
// commit) and the deletion is rolled back. late is that second run: p
// was already disabled and what it held revoked, which the refusal says
// (docs/api.md).
func refuseBound(ctx context.Context, store boundReader, p storage.Principal, late bool) error {
	cs, err := store.ListClients(ctx, p.OrgID)
	if err != nil {
		return lookupErr(err, "clients")
	}
	var clients, pools []string
	for _, cl := range cs {
		if cl.PrincipalID == p.ID {
			clients = append(clients, cl.ID)
		}
	}
	ps, err := store.ListPoolsOfPrincipal(ctx, p.ID)
	if err != nil {
		return lookupErr(err, "pools")
	}
	elsewhere := 0
	for _, pl := range ps {
		if pl.OrgID == p.OrgID {
			pools = append(pools, pl.ID)
		} else {
			elsewhere++
		}
	}
	var bound []string
	if len(clients) > 0 {
		bound = append(bound, "clients "+strings.Join(clients, ", "))
	}
	if len(pools) > 0 {
		bound = append(bound, "pools "+strings.Join(pools, ", "))
	}
	switch elsewhere {
	case 0:
	case 1:
		bound = append(bound, "1 pool of another organization")
	default:
		bound = append(bound, strconv.Itoa(elsewhere)+" pools of other organizations")
	}
	if len(bound) == 0 {
		return nil
	}
	if late {
		return sts.Errorf(sts.FailedPrecondition, "principal is the subject of %s, bound while it was being deleted; it was left disabled, its personal access tokens, host tokens and earlier access tokens already revoked: delete them or bind them to another principal, then delete it again",
			strings.Join(bound, " and "))
	}
	return sts.Errorf(sts.FailedPrecondition, "principal is the subject of %s; delete them or bind them to another principal first",
		strings.Join(bound, " and "))
}

// UpdateOrganization renames an organization or changes its tier.
func (s *OrganizationService) UpdateOrganization(ctx context.Context, req *stsv1.UpdateOrganizationRequest) (*stsv1.UpdateOrganizationResponse, error) {
	id, err := s.h.requireInstanceAdmin(ctx)
	if err != nil {
		return nil, err
	}
	o, err := UpdateOrganization(ctx, s.h.adminStore(), id.caller(), req.GetOrganizationId(), req.Name, req.Tier, s.h.now())
	if err != nil {
		return nil, err
	}
	return &stsv1.UpdateOrganizationResponse{Organization: orgToProto(o)}, nil
}

// DeleteOrganization deletes an empty organization other than the
// caller's own.
func (s *OrganizationService) DeleteOrganization(ctx context.Context, req *stsv1.DeleteOrganizationRequest) (*stsv1.DeleteOrganizationResponse, error) {
	id, err := s.h.requireInstanceAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetOrganizationId() == id.OrgID {
		return nil, sts.Errorf(sts.Invalid, "cannot delete your own organization")
	}
	store, err := s.h.lifecycleStore()
	if err != nil {
		return nil, err
	}
	if err := DeleteOrganization(ctx, store, id.caller(), req.GetOrganizationId(), s.h.DeclaredOrganizations, s.h.now()); err != nil {
		return nil, err
	}
	return &stsv1.DeleteOrganizationResponse{}, nil
}

// DeletePrincipal deletes a principal of the caller's organization (any,
// for an instance administrator), never the caller itself.
func (s *PrincipalService) DeletePrincipal(ctx context.Context, req *stsv1.DeletePrincipalRequest) (*stsv1.DeletePrincipalResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	principalID := storage.CanonicalID(req.GetPrincipalId())
	if principalID == id.PrincipalID {
		return nil, sts.Errorf(sts.Invalid, "cannot delete yourself")
	}
	p, err := s.h.Store.GetPrincipal(ctx, principalID)
	if err != nil {
		return nil, lookupErr(err, "principal")
	}
	if err := s.h.mayActOnPrincipal(ctx, id, p); err != nil {
		return nil, err
	}
	store, err := s.h.lifecycleStore()
	if err != nil {
		return nil, err
	}
	if err := DeletePrincipal(ctx, store, s.h.PATs, id.caller(), p, s.h.now()); err != nil {
		return nil, err
	}
	return &stsv1.DeletePrincipalResponse{}, nil
}

// deletePrincipalAudited deletes p with its audit event in one unit of
// work (docs/design.md#audit). A principal already gone (a retry after a
// lost answer) is deleted again only in the audit trail's eyes: its event
// is still written. A runner's registered public key goes in the same unit
// of work, with an event of its own naming the key's fingerprint: no key
// is left for a runner that no longer exists (docs/security.md A-48).
func deletePrincipalAudited(ctx context.Context, store storage.AuditStore, c pat.Caller, p storage.Principal, now time.Time) error {
	ps, _ := store.(storage.PrincipalStore)
	ks, _ := store.(storage.RunnerKeyStore)
	keyTarget := "principal:" + p.ID
	if ks != nil {
		switch k, err := ks.GetRunnerKey(ctx, p.ID); {
		case err == nil:
			keyTarget += " key:" + hosttoken.Fingerprint(k.PublicKey)
		case !errors.Is(err, storage.ErrNotFound):
			return lookupErr(err, "runner key")
		}
	}
	// deleteKey deletes p's key with del and, when there was one, appends
	// its event with appendAudit.
	deleteKey := func(del func(context.Context, string) error, appendAudit func(context.Context, ...storage.AuditEvent) error) error {
		switch err := del(ctx, p.ID); {
		case errors.Is(err, storage.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		ev := c.Event(now, p.OrgID, hosttoken.ActionRunnerKeyDelete, keyTarget, "success", "principal deleted")
		if err := appendAudit(ctx, ev); err != nil {
			return storage.EventNotStored{Err: err}
		}
		return nil
	}
	err := changeAudited(ctx, store,
		func(tx storage.Tx) error {
			// The row the deletion takes is the one it was authorized on:
			// one disabled already skipped the disabling write above, where
			// an instance role granted since is otherwise seen.
			// Held exclusively: two deletions of the principal that each
			// held it shared would each wait for the other to delete it.
			switch cur, err := tx.LockPrincipalExclusive(ctx, p.ID); {
			case err == nil:
				if err := sameStanding(p, cur); err != nil {
					return err
				}
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
			if err := deleteKey(tx.DeleteRunnerKey, tx.AppendAudit); err != nil {
				return err
			}
			if err := ignoreNotFound(tx.DeletePrincipal(ctx, p.ID)); err != nil {
				return err
			}
			// The deletion took the principal's row above: a client or pool
			// bound to it since refuseBound's early look committed first
			// and is seen now (docs/security.md A-86).
			return refuseBound(ctx, tx, p, true)
		},
		func() error {
			if ps == nil {
				return errors.New("no principal store")
			}
			if ks != nil {
				if err := deleteKey(ks.DeleteRunnerKey, store.AppendAudit); err != nil {
					return err
				}
			}
			return ignoreNotFound(ps.DeletePrincipal(ctx, p.ID))
		},
		func() storage.AuditEvent {
			return c.Event(now, p.OrgID, ActionPrincipalDelete, "principal:"+p.ID, "success", "")
		})
	return changeErr(err, "principal")
}

// deleteHostTokensOf deletes, each with its audit event, the host tokens
// p is the subject or the runner of, so that no SCM secret is kept,
// refreshed or delivered for a principal that is gone (docs/security.md
// A store without host tokens has none to delete.
func deleteHostTokensOf(ctx context.Context, store LifecycleStore, c pat.Caller, p storage.Principal, now time.Time) error {
	hs, ok := store.(storage.HostTokenStore)
	if !ok {
		return nil
	}
	for _, f := range []storage.HostTokenFilter{{OrgID: p.OrgID, SubjectID: p.ID, Limit: 200}, {OrgID: p.OrgID, RunnerID: p.ID, Limit: 200}} {
		for pages := 0; ; pages++ {
			rows, err := hs.ListHostTokens(ctx, f)
			if err != nil {
				return lookupErr(err, "host tokens")
			}
			if len(rows) == 0 {
				break
			}
			if pages == 1000 { // 200 000 tokens deleted and still more: something is wrong
				return sts.Errorf(sts.Unavailable, "host tokens of principal %s keep coming back", p.ID)
			}
			for _, r := range rows {
				err := changeAudited(ctx, store,
					func(tx storage.Tx) error { return ignoreNotFound(tx.DeleteHostToken(ctx, r.ID)) },
					func() error { return ignoreNotFound(hs.DeleteHostToken(ctx, r.ID)) },
					func() storage.AuditEvent {
						return c.Event(now, p.OrgID, hosttoken.ActionDelete, "host_token:"+r.ID, "success", "principal deleted")
					})
				if err := changeErr(err, "host token"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}
