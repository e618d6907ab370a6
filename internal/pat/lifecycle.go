package pat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Audit actions.
const (
	ActionPATCreate     = "pat.create"
	ActionPATRegenerate = "pat.regenerate"
	ActionPATDelete     = "pat.delete"
	ActionPATUpdate     = "pat.update"
	ActionExchangeMint  = "exchange_token.create"
)

// CreateInput describes a new PAT.
type CreateInput struct {
	OwnerID     string
	Description string
	Scopes      []string
	ExpiresAt   time.Time
	// Once, when set, is a one-time value the creation uses up in its
	// own transaction: a second Create with the same Once.ID creates
	// nothing and fails with ErrAlreadyCreated (docs/security.md T-165).
	Once *Once
}

// Once is a one-time value of a creation (CreateInput.Once): ID is
// recorded as used until Expires; Issued is when it was handed out, and a
// restore of the database since then refuses it as used (storage.Tx
// MarkUsed).
type Once struct {
	ID              string
	Issued, Expires time.Time
}

// ErrAlreadyCreated is wrapped by Create's [sts.AlreadyExists] error when
// its CreateInput.Once was used before: nothing was created.
var ErrAlreadyCreated = errors.New("already created with this one-time value")

// Create stores a new PAT for in.OwnerID and returns it with its secret.
// The secret is returned only after the row and its audit event have both
// committed (docs/security.md D-02, D-08); if the audit append fails the row
// is deleted again and no secret is disclosed.
// Errors: [sts.Invalid], [sts.NotFound] (owner), [sts.FailedPrecondition]
// (owner disabled), [sts.Unavailable].
func (s *Service) Create(ctx context.Context, c Caller, in CreateInput) (storage.PAT, string, error) {
	owner, err := s.activeOwner(ctx, in.OwnerID)
	if err != nil {
		return storage.PAT{}, "", err
	}
	now := s.now()
	if err := s.checkExpiry(now, in.ExpiresAt); err != nil {
		return storage.PAT{}, "", err
	}
	desc, scopes, err := checkFields(in.Description, in.Scopes)
	if err != nil {
		return storage.PAT{}, "", err
	}
	secret := PrefixPAT.Generate()
	digest, err := s.digest(secret)
	if err != nil {
		return storage.PAT{}, "", err
	}
	p := storage.PAT{
		ID: storage.NewID(), OrgID: owner.OrgID, OwnerID: owner.ID, Description: desc,
		Scopes: scopes, Digest: digest, CreatedAt: now, ExpiresAt: storage.Now(in.ExpiresAt),
	}
	// The row and its audit event commit together (docs/design.md#audit),
	// with the owner held: a deletion disables the owner before it
	// deletes its PATs, so either this PAT commits first and is deleted
	// with the rest, or the owner reads as disabled or gone here
	// (docs/design.md#owners-held-while-their-rows-are-written, docs/security.md A-87).
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		if o := in.Once; o != nil {
			// Of two Creates with one value, concurrent or not, one
			// commits; the other creates nothing.
			if err := tx.MarkUsed(ctx, o.ID, o.Issued, o.Expires); errors.Is(err, storage.ErrAlreadyExists) {
				return sts.Wrap(sts.AlreadyExists, fmt.Errorf("%w: %w", ErrAlreadyCreated, err), "already created")
			} else if err != nil {
				return storageErr(err, "one-time value")
			}
		}
		if err := holdOwner(ctx, tx, owner.ID); err != nil {
			return err
		}
		if err := tx.CreatePAT(ctx, p); err != nil {
			return storageErr(err, "personal access token")
		}
		if err := tx.AppendAudit(ctx, c.Event(s.now(), p.OrgID, ActionPATCreate, Target(p.ID), "success", "")); err != nil {
			return sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*sts.Error](err); !ok {
			err = sts.Wrap(sts.Unavailable, err, "storage unavailable") // the commit failed
		}
		return storage.PAT{}, "", err
	}
	s.logger().InfoContext(ctx, "personal access token created", "pat_id", p.ID, "owner", p.OwnerID, "digest", DigestID(p.Digest))
	return p, secret, nil
}

// Get returns the PAT id if ownerID owns it; a token of someone else is
// reported as not found. An empty ownerID skips the ownership check
// (administrators). Errors: [sts.NotFound], [sts.Unavailable].
func (s *Service) Get(ctx context.Context, ownerID, id string) (storage.PAT, error) {
	p, err := s.store.GetPAT(ctx, id)
	if err != nil {
		return storage.PAT{}, storageErr(err, "personal access token")
	}
	if ownerID != "" && p.OwnerID != ownerID {
		return storage.PAT{}, sts.Errorf(sts.NotFound, "personal access token not found")
	}
	return p, nil
}

// UpdateInput changes a PAT's description and/or scopes; nil means keep.
type UpdateInput struct {
	Description *string
	Scopes      *[]string
}

// detail names the fields in sets for the audit trail, as client.update's
// does ("changed description,scopes"; docs/design.md#audit).
func (in UpdateInput) detail() string {
	var f []string
	if in.Description != nil {
		f = append(f, "description")
	}
	if in.Scopes != nil {
		f = append(f, "scopes")
	}
	if len(f) == 0 {
		return ""
	}
	return "changed " + strings.Join(f, ",")
}

// Update changes the description and scopes only; the secret and expiry
// stay. The change commits with its audit event, or not at all. guards
// run on the stored record before the change. Errors: [sts.Invalid],
// [sts.NotFound], [sts.PermissionDenied] (a guard), [sts.Unavailable].
func (s *Service) Update(ctx context.Context, c Caller, ownerID, id string, in UpdateInput, guards ...Guard) (storage.PAT, error) {
	var out storage.PAT
	err := s.changeAudited(ctx, id, func(tx storage.Tx) error {
		return tx.UpdatePAT(ctx, id, func(p storage.PAT) (storage.PAT, error) {
			if ownerID != "" && p.OwnerID != ownerID {
				return p, sts.Errorf(sts.NotFound, "personal access token not found")
			}
			if err := runGuards(p, guards); err != nil {
				return p, err
			}
			// Only what the update sets is checked: a description stored
			// before a rule does not block a change of scopes
			// (docs/security.md T-135).
			desc, scopes := "", p.Scopes
			if in.Description != nil {
				desc = *in.Description
			}
			if in.Scopes != nil {
				scopes = *in.Scopes
			}
			desc, scopes, err := checkFields(desc, scopes)
			if err != nil {
				return p, err
			}
			if in.Description != nil {
				p.Description = desc
			}
			p.Scopes = scopes
			out = p
			return p, nil
		})
	}, func() storage.AuditEvent {
		return c.Event(s.now(), out.OrgID, ActionPATUpdate, Target(id), "success", in.detail())
	})
	if err != nil {
		return storage.PAT{}, err
	}
	return out, nil
}

// Regenerate gives PAT id a new secret and a new expiry in one UpdatePAT,
// committed with its audit event: the old secret stops working at that
// commit (docs/security.md D-03). If the event cannot be stored nothing
// changes: the old secret keeps working and no new one is disclosed. guards run on the stored record inside the update. Errors:
// [sts.Invalid], [sts.NotFound], [sts.FailedPrecondition],
// [sts.PermissionDenied] (a guard), [sts.Unavailable].
func (s *Service) Regenerate(ctx context.Context, c Caller, ownerID, id string, expiresAt time.Time, guards ...Guard) (storage.PAT, string, error) {
	now := s.now()
	if err := s.checkExpiry(now, expiresAt); err != nil {
		return storage.PAT{}, "", err
	}
	secret := PrefixPAT.Generate()
	digest, err := s.digest(secret)
	if err != nil {
		return storage.PAT{}, "", err
	}
	var out storage.PAT
	err = s.changeAudited(ctx, id, func(tx storage.Tx) error {
		return tx.UpdatePAT(ctx, id, func(p storage.PAT) (storage.PAT, error) {
			if ownerID != "" && p.OwnerID != ownerID {
				return p, sts.Errorf(sts.NotFound, "personal access token not found")
			}
			if err := runGuards(p, guards); err != nil {
				return p, err
			}
			p.Digest, p.ExpiresAt = digest, storage.Now(expiresAt)
			out = p
			return p, nil
		})
	}, func() storage.AuditEvent { return s.event(c, out.OrgID, ActionPATRegenerate, id) })
	if err != nil {
		return storage.PAT{}, "", err
	}
	s.logger().InfoContext(ctx, "personal access token regenerated", "pat_id", id, "digest", DigestID(digest))
	return out, secret, nil
}

// Delete removes PAT id, with its audit event in the same transaction; it
// stops authenticating at once on this replica and within CacheTTL on
// others. guards run on the record first, for an early answer, and again
// in the deletion's unit of work on the row it holds (as Regenerate and
// Update run them inside their update): a token given more scopes since
// the first read (sts:admin, docs/security.md A-90) is judged as it is
// when deleted. Errors: [sts.NotFound], [sts.PermissionDenied] (a guard),
// [sts.Unavailable].
func (s *Service) Delete(ctx context.Context, c Caller, ownerID, id string, guards ...Guard) error {
	p, err := s.Get(ctx, ownerID, id)
	if err != nil {
		return err
	}
	if err := runGuards(p, guards); err != nil {
		return err
	}
	return s.changeAudited(ctx, id, func(tx storage.Tx) error {
		// The updater holds the row (changing nothing) until the
		// deletion commits.
		if err := tx.UpdatePAT(ctx, id, func(cur storage.PAT) (storage.PAT, error) {
			if ownerID != "" && cur.OwnerID != ownerID {
				return cur, sts.Errorf(sts.NotFound, "personal access token not found")
			}
			if err := runGuards(cur, guards); err != nil {
				return cur, err
			}
			p = cur
			return cur, nil
		}); err != nil {
			return err
		}
		return tx.DeletePAT(ctx, id)
	}, func() storage.AuditEvent { return s.event(c, p.OrgID, ActionPATDelete, id) })
}

// changeAudited runs change, then appends the event ev returns (built after
// change, from what it read), in one unit of work: the change and its
// event commit together or not at all (docs/design.md#audit). The PAT's
// cached check is dropped either way. Errors: change's *sts.Error as is,
// storage failures translated; an event or commit that fails is
// [sts.Unavailable] and nothing is changed.
func (s *Service) changeAudited(ctx context.Context, id string, change func(storage.Tx) error, ev func() storage.AuditEvent) error {
	defer s.evict(id)
	err := s.store.WithTx(ctx, func(tx storage.Tx) error {
		if err := change(tx); err != nil {
			return domainErr(err)
		}
		if err := tx.AppendAudit(ctx, ev()); err != nil {
			return sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*sts.Error](err); !ok {
			err = sts.Wrap(sts.Unavailable, err, "storage unavailable") // the commit failed
		}
		return err
	}
	return nil
}

// Guard is an extra authorization check on the PAT a change acts on, run
// on the stored record (inside the update for Regenerate and Update, so
// the check and the write see the same row). It returns the error to
// answer, or nil.
type Guard func(storage.PAT) error

// HeldBy is the rule for acting on a PAT: the acting credential must hold
// every scope of the target PAT, so a tokens:write or full-access
// credential cannot regenerate (and so obtain) or delete a more
// privileged token of the same owner.
func HeldBy(scopes []string) Guard {
	return func(p storage.PAT) error {
		for _, sc := range p.Scopes {
			if !Allows(scopes, sc) {
				return sts.Errorf(sts.PermissionDenied, "the credential lacks the %s scope of this token", sc)
			}
		}
		return nil
	}
}

func runGuards(p storage.PAT, guards []Guard) error {
	for _, g := range guards {
		if err := g(p); err != nil {
			return err
		}
	}
	return nil
}

// domainErr keeps *sts.Error values from updaters and translates storage
// sentinels.
func domainErr(err error) error {
	if _, ok := err.(*sts.Error); ok {
		return err
	}
	return storageErr(err, "personal access token")
}

func (s *Service) activeOwner(ctx context.Context, id string) (storage.Principal, error) {
	if id == "" {
		return storage.Principal{}, sts.Errorf(sts.Invalid, "owner required")
	}
	p, err := s.store.GetPrincipal(ctx, id)
	if err != nil {
		return storage.Principal{}, storageErr(err, "principal")
	}
	if p.Disabled {
		return storage.Principal{}, sts.Errorf(sts.FailedPrecondition, "principal is disabled")
	}
	return p, nil
}

// holdOwner is activeOwner's check again, in tx and under
// Tx.LockPrincipal: the owner cannot be disabled or deleted before tx
// ends (docs/design.md#owners-held-while-their-rows-are-written).
// The caller's OwnerGuard (WithOwnerGuard) then judges the held row.
func holdOwner(ctx context.Context, tx storage.Tx, id string) error {
	p, err := tx.LockPrincipal(ctx, id)
	if err != nil {
		return storageErr(err, "principal")
	}
	if p.Disabled {
		return sts.Errorf(sts.FailedPrecondition, "principal is disabled")
	}
	if g, ok := ctx.Value(ownerGuardKey{}).(OwnerGuard); ok {
		return g(p)
	}
	return nil
}

// OwnerGuard is a caller's authorization of the principal a PAT or an
// exchange token is minted for, judged again on the principal's row as
// the creation holds it (holdOwner): the caller authorized the owner on
// an earlier read, and a change that committed since (the instance role
// granted to it, docs/security.md A-96) is seen here, where the row can
// no longer change until the creation commits.
type OwnerGuard func(storage.Principal) error

type ownerGuardKey struct{}

// WithOwnerGuard returns ctx carrying g for Create and CreateExchangeToken.
func WithOwnerGuard(ctx context.Context, g OwnerGuard) context.Context {
	return context.WithValue(ctx, ownerGuardKey{}, g)
}

// checkExpiry enforces the lifetime policy at create and regenerate
// (docs/security.md T-69): required, at least a day, at most MaxLifetime. A
// minute of leeway absorbs clients that compute "now + 30 days" slightly
// before we read the clock.
func (s *Service) checkExpiry(now, exp time.Time) error {
	if exp.IsZero() {
		return sts.Errorf(sts.Invalid, "expiry required")
	}
	life := exp.Sub(now)
	if life < MinLifetime-lifetimeLeeway || life > s.maxLifetime()+lifetimeLeeway {
		return sts.Errorf(sts.Invalid, "expiry must be between 1 and %d days from now", int(s.maxLifetime()/(24*time.Hour)))
	}
	return nil
}

func checkFields(desc string, scopes []string) (string, []string, error) {
	desc = strings.TrimSpace(desc)
	if len(desc) > maxDescriptionLen {
		return "", nil, sts.Errorf(sts.Invalid, "description longer than %d bytes", maxDescriptionLen)
	}
	// Neither backend may store a NUL or bytes that are not UTF-8 the
	// same way: PostgreSQL refuses such text (docs/security.md T-108). Nor
	// may it display otherwise than it reads (bidi controls, invisible
	// formatting; docs/security.md T-135).
	if err := sts.CheckDisplayText("description", desc); err != nil {
		return "", nil, err
	}
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if !KnownScope(sc) {
			return "", nil, sts.Errorf(sts.Invalid, "unknown scope %q", sc)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return desc, out, nil
}
