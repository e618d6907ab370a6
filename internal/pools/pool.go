package pools

import (
	"context"
	"maps"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// CreatePool validates p and stores it (its times are set here). Errors:
// [sts.Invalid] (naming the field), [sts.NotFound] (organization or
// principal), [sts.AlreadyExists], [sts.Unavailable].
func (s *Service) CreatePool(ctx context.Context, c Caller, p storage.Pool) (storage.Pool, error) {
	if err := s.checkPool(p, poolCreate); err != nil {
		return storage.Pool{}, err
	}
	if err := s.checkPoolRefs(ctx, p, true); err != nil {
		return storage.Pool{}, err
	}
	now := storage.Now(s.now())
	p.CreatedAt, p.UpdatedAt = now, now
	// Its organization and principal are held by the unit of work that
	// stores it: a deletion of either comes after the pool, and refuses
	// it, or leaves nothing here to store it for (docs/design.md#owners-held-while-their-rows-are-written,
	// docs/security.md A-87).
	err := s.changeAudited(ctx, c, func(tx storage.Tx) error {
		if err := checkHeldOwners(ctx, tx, p); err != nil {
			return err
		}
		return tx.CreatePool(ctx, p)
	},
		func() error { return s.store.CreatePool(ctx, p) },
		func() (string, string, string, string) { return p.OrgID, ActionPoolCreate, poolTarget(p.ID), "" })
	if err != nil {
		return storage.Pool{}, changeErr(err, "pool "+quote(p.ID))
	}
	s.logger().InfoContext(ctx, "pool created", "pool", p.ID, "org", p.OrgID)
	s.changed(ctx, "pool/"+p.ID)
	return p, nil
}

// checkOwners checks that p's organization and principal (when it names
// one) exist, read through r: the Store, or storage.Held in the unit of
// work that writes.
func checkOwners(ctx context.Context, r storage.OwnerReader, p storage.Pool) error {
	if _, err := r.GetOrganization(ctx, p.OrgID); err != nil {
		return storageErr(err, "organization "+quote(p.OrgID))
	}
	if p.PrincipalID == "" {
		return nil
	}
	pr, err := r.GetPrincipal(ctx, p.PrincipalID)
	if err == nil && pr.OrgID != p.OrgID {
		// Another organization's principal answers as a missing one
		// does, so its ID cannot be probed (docs/authorization.md, Roles).
		err = storage.ErrNotFound
	}
	if err != nil {
		return storageErr(err, "principal "+quote(p.PrincipalID))
	}
	return nil
}

// checkHeldOwners is checkOwners in the unit of work that writes p, with
// its owners' rows held, and then ctx's PrincipalGuard on the principal p
// is bound to, as held: the caller authorized the binding on an earlier
// read, and a change that committed since (the instance role granted to
// the principal, docs/security.md A-97) is seen here.
func checkHeldOwners(ctx context.Context, tx storage.Tx, p storage.Pool) error {
	if err := checkOwners(ctx, storage.Held(tx), p); err != nil {
		return err
	}
	g, ok := ctx.Value(principalGuardKey{}).(PrincipalGuard)
	if !ok || p.PrincipalID == "" {
		return nil
	}
	pr, err := storage.Held(tx).GetPrincipal(ctx, p.PrincipalID)
	if err != nil {
		return storageErr(err, "principal "+quote(p.PrincipalID))
	}
	return g(pr)
}

// PrincipalGuard is a caller's authorization of the principal a pool is
// bound to by CreatePool or an UpdatePool that rebinds it, judged again
// on the principal's row as the write holds it (docs/security.md A-97).
type PrincipalGuard func(storage.Principal) error

type principalGuardKey struct{}

// WithPrincipalGuard returns ctx carrying g for CreatePool and UpdatePool.
func WithPrincipalGuard(ctx context.Context, g PrincipalGuard) context.Context {
	return context.WithValue(ctx, principalGuardKey{}, g)
}

// checkPoolRefs checks what p refers to: its organization, its principal
// and, without a condition, its providers' issuers. created is true for a
// new pool (it has no providers yet).
func (s *Service) checkPoolRefs(ctx context.Context, p storage.Pool, created bool) error {
	if err := checkOwners(ctx, s.store, p); err != nil {
		return err
	}
	if created {
		return nil
	}
	providers, err := s.store.ListProviders(ctx, p.ID)
	if err != nil {
		return storageErr(err, "providers")
	}
	if pr, ok := needsCondition(p, providers); ok {
		return invalid("pool %q: condition is required because provider %q trusts %s, which signs tokens for every tenant; pin yours (for example assertion.repository_owner == \"acme\")",
			p.ID, pr.ID, pr.Issuer)
	}
	return nil
}

// GetPool returns pool id. Errors: [sts.Invalid], [sts.NotFound],
// [sts.Unavailable].
func (s *Service) GetPool(ctx context.Context, id string) (storage.Pool, error) {
	if err := checkRef("pool_id", "pool", id); err != nil {
		return storage.Pool{}, err
	}
	p, err := s.store.GetPool(ctx, id)
	if err != nil {
		return storage.Pool{}, storageErr(err, "pool "+quote(id))
	}
	return p, nil
}

// ListPools returns the pools of organization orgID ordered by ID, or
// every pool when orgID is empty. Errors: [sts.NotFound] (organization),
// [sts.Unavailable].
func (s *Service) ListPools(ctx context.Context, orgID string) ([]storage.Pool, error) {
	if orgID != "" {
		if _, err := s.store.GetOrganization(ctx, orgID); err != nil {
			return nil, storageErr(err, "organization "+quote(orgID))
		}
	}
	list, err := s.store.ListPools(ctx)
	if err != nil {
		return nil, storageErr(err, "pools")
	}
	if orgID == "" {
		return list, nil
	}
	out := list[:0]
	for _, p := range list {
		if p.OrgID == orgID {
			out = append(out, p)
		}
	}
	return out, nil
}

// PoolUpdate changes the fields that are set; nil keeps the current
// value, and an empty string clears an optional string. Attributes, when
// set, replaces every attribute mapping; AttributeEdits then sets (a CEL
// expression) or removes ("") single attributes.
type PoolUpdate struct {
	OrgID                *string
	DisplayName          *string
	Disabled             *bool
	IdentityClaim        *string
	Condition            *string
	Subject              *string
	Groups               *string
	Attributes           *map[string]string
	AttributeEdits       map[string]string
	Scopes               *[]string
	MaxTokenLifetime     *time.Duration
	PrincipalID          *string
	AllowUnauthenticated *bool
	// Audiences and GoogleDefaultScopes replace the lists (empty clears).
	Audiences           *[]string
	GoogleDefaultScopes *[]string
}

// fields names the fields that are set, for messages and the audit trail.
func (u PoolUpdate) fields() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"organization_id", u.OrgID != nil}, {"display_name", u.DisplayName != nil}, {"disabled", u.Disabled != nil},
		{"identity_claim", u.IdentityClaim != nil}, {"condition", u.Condition != nil},
		{"mapping.subject", u.Subject != nil}, {"mapping.groups", u.Groups != nil},
		{"mapping.attributes", u.Attributes != nil || len(u.AttributeEdits) > 0},
		{"scopes", u.Scopes != nil}, {"max_token_lifetime", u.MaxTokenLifetime != nil},
		{"principal_id", u.PrincipalID != nil}, {"allow_unauthenticated", u.AllowUnauthenticated != nil},
		{"audiences", u.Audiences != nil}, {"google_default_scopes", u.GoogleDefaultScopes != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// sets says which of the fields held to a newer rule u sets.
func (u PoolUpdate) sets() poolSets {
	return poolSets{name: u.DisplayName != nil, scopes: u.Scopes != nil, googleScopes: u.GoogleDefaultScopes != nil}
}

// Apply sets the fields of u on p.
func (u PoolUpdate) Apply(p *storage.Pool) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.OrgID, u.OrgID)
	set(&p.DisplayName, u.DisplayName)
	set(&p.IdentityClaim, u.IdentityClaim)
	set(&p.Condition, u.Condition)
	set(&p.Mapping.Subject, u.Subject)
	set(&p.Mapping.Groups, u.Groups)
	set(&p.PrincipalID, u.PrincipalID)
	if u.Disabled != nil {
		p.Disabled = *u.Disabled
	}
	if u.AllowUnauthenticated != nil {
		p.AllowUnauthenticated = *u.AllowUnauthenticated
	}
	if u.Attributes != nil {
		p.Mapping.Attributes = maps.Clone(*u.Attributes)
	} else {
		p.Mapping.Attributes = maps.Clone(p.Mapping.Attributes)
	}
	for name, expr := range u.AttributeEdits {
		if expr == "" {
			delete(p.Mapping.Attributes, name)
			continue
		}
		if p.Mapping.Attributes == nil {
			p.Mapping.Attributes = map[string]string{}
		}
		p.Mapping.Attributes[name] = expr
	}
	if len(p.Mapping.Attributes) == 0 {
		p.Mapping.Attributes = nil
	}
	if u.Scopes != nil {
		p.Scopes = append([]string(nil), *u.Scopes...)
	}
	if u.MaxTokenLifetime != nil {
		p.MaxTokenLifetime = *u.MaxTokenLifetime
	}
	list := func(v *[]string) []string {
		if len(*v) == 0 {
			return nil
		}
		return append([]string(nil), *v...)
	}
	if u.Audiences != nil {
		p.Audiences = list(u.Audiences)
	}
	if u.GoogleDefaultScopes != nil {
		p.GoogleDefaultScopes = list(u.GoogleDefaultScopes)
	}
}

// UpdatePool applies u to pool id in one UpdatePool: either every field
// changes or none does. The result is checked like a new pool (CEL
// compiled again on the row as it is at the update). Errors:
// [sts.Invalid] (naming the field, or nothing set), [sts.NotFound],
// [sts.Unavailable].
func (s *Service) UpdatePool(ctx context.Context, c Caller, id string, u PoolUpdate) (storage.Pool, error) {
	fields := u.fields()
	if err := checkRef("pool_id", "pool", id); err != nil {
		return storage.Pool{}, err
	}
	if len(fields) == 0 {
		return storage.Pool{}, invalid("nothing to update: set at least one field")
	}
	old, err := s.GetPool(ctx, id)
	if err != nil {
		return storage.Pool{}, err
	}
	p := old
	u.Apply(&p)
	if err := s.checkPool(p, u.sets()); err != nil {
		return storage.Pool{}, err
	}
	if err := s.checkPoolRefs(ctx, p, false); err != nil {
		return storage.Pool{}, err
	}
	now := storage.Now(s.now())
	var out storage.Pool
	var ended []string   // the trust-deciding fields the update changes
	var movedFrom string // the organization a move takes the pool from
	guard := guardOf(ctx)
	update := func(cur storage.Pool) (storage.Pool, error) {
		if guard != nil {
			if err := guard(cur); err != nil {
				return cur, err
			}
		}
		prev := cur
		u.Apply(&cur)
		if err := s.checkPool(cur, u.sets()); err != nil {
			return cur, err
		}
		cur.UpdatedAt = now
		out, ended = cur, poolTrustChanges(prev, cur)
		movedFrom = ""
		if prev.OrgID != cur.OrgID {
			movedFrom = prev.OrgID
		}
		return cur, nil
	}
	detail := func() string {
		return updateDetail("pool", fields, u.Disabled != nil && *u.Disabled, ended)
	}
	// A move is recorded in the organization the pool leaves as well, so
	// its administrators see it go (the event in the new one is
	// changeAudited's).
	leftEvent := func() storage.AuditEvent {
		return c.Event(s.now(), movedFrom, ActionPoolUpdate, poolTarget(id), "success", detail())
	}
	// A change of what the pool trusts ends what it let in before, as a
	// deletion does: the row commits with the update, or neither does
	// (docs/security.md A-62).
	row := func() storage.Revocation {
		reason, _ := trustEnded("pool", ended)
		return storage.PoolRevocation(id, reason, s.now(), s.revocationKeep())
	}
	// A rebinding or a move holds the pool's owners as a creation does and
	// checks them again on the row it wrote: a principal's deletion waits
	// for it and then finds the binding, or went first and leaves nothing
	// to bind to (docs/design.md#owners-held-while-their-rows-are-written,
	// docs/security.md A-86).
	rebinds := u.PrincipalID != nil || u.OrgID != nil
	change := func(tx storage.Tx) error {
		if err := tx.UpdatePool(ctx, id, update); err != nil {
			return err
		}
		if rebinds {
			if err := checkHeldOwners(ctx, tx, out); err != nil {
				return err
			}
		}
		if movedFrom != "" {
			if err := tx.AppendAudit(ctx, leftEvent()); err != nil {
				return storage.EventNotStored{Err: err}
			}
		}
		if len(ended) == 0 {
			return nil
		}
		return tx.PutRevocation(ctx, row())
	}
	plain := func() error {
		// Without a unit of work (a test double), the row first, as for a
		// deletion.
		if ended = poolTrustChanges(old, p); len(ended) > 0 {
			if err := s.store.PutRevocation(ctx, row()); err != nil {
				return err
			}
		}
		if err := s.store.UpdatePool(ctx, id, update); err != nil || movedFrom == "" {
			return err
		}
		ev := leftEvent()
		s.audit(ctx, c, ev.OrgID, ev.Action, ev.Target, ev.Detail)
		return nil
	}
	err = s.changeAudited(ctx, c, change, plain,
		func() (string, string, string, string) {
			return out.OrgID, ActionPoolUpdate, poolTarget(id), detail()
		})
	if err != nil {
		return storage.Pool{}, changeErr(err, "pool "+quote(id))
	}
	s.logger().InfoContext(ctx, "pool updated", "pool", id, "fields", fields, "ended_earlier_tokens", ended)
	s.changed(ctx, "pool/"+id)
	return out, nil
}

// DeletePool removes pool id and its providers and returns how many
// providers went with it. A pool the configuration file declares is
// refused. Errors: [sts.Invalid], [sts.NotFound],
// [sts.FailedPrecondition] (declared in the file), [sts.Unavailable].
func (s *Service) DeletePool(ctx context.Context, c Caller, id string) (int, error) {
	p, err := s.GetPool(ctx, id)
	if err != nil {
		return 0, err
	}
	// The next start would create it again, its trust with it, while the
	// administrator believes it gone (docs/security.md A-59); disabling
	// stops it and lasts.
	if s.limits.Declared[TrustID{Pool: id}] {
		return 0, sts.Errorf(sts.FailedPrecondition, "pool %s is declared in the configuration file; disable it (`sts pool disable %s`) or remove it from the file first", id, id)
	}
	providers, err := s.store.ListProviders(ctx, id)
	if err != nil {
		return 0, storageErr(err, "providers")
	}
	// The row that ends the pool's tokens for good: its ID can be used
	// again, by any organization, and the tokens carry only the ID
	// (docs/security.md A-54). It commits with the deletion, after the
	// caller's authorization is checked again on the row, so a
	// refused deletion ends nobody's tokens. Without a unit of work it is
	// written first: should the deletion then fail, the pool stays with
	// its earlier tokens ended, which the caller meant anyway.
	row := func() storage.Revocation {
		return storage.PoolRevocation(id, "pool deleted", s.now(), s.revocationKeep())
	}
	err = s.changeAudited(ctx, c,
		func(tx storage.Tx) error {
			if err := recheck(ctx, tx, id); err != nil {
				return err
			}
			if err := tx.PutRevocation(ctx, row()); err != nil {
				return err
			}
			return tx.DeletePool(ctx, id)
		},
		func() error {
			if err := s.recheckPlain(ctx, id); err != nil {
				return err
			}
			if err := s.store.PutRevocation(ctx, row()); err != nil {
				return err
			}
			return s.store.DeletePool(ctx, id)
		},
		func() (string, string, string, string) { return p.OrgID, ActionPoolDelete, poolTarget(id), "" })
	if err != nil {
		return 0, changeErr(err, "pool "+quote(id))
	}
	s.logger().InfoContext(ctx, "pool deleted", "pool", id, "providers", len(providers))
	s.changed(ctx, "pool/"+id)
	return len(providers), nil
}
