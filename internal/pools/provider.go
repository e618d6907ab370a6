package pools

import (
	"bytes"
	"context"
	"strings"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

func providerTarget(poolID, id string) string { return "provider:" + poolID + "/" + id }

// providerCreateDetail is the detail of provider.create, from the API and
// from the configuration file alike.
func providerCreateDetail(p storage.Provider) string { return "issuer=" + p.Issuer }

// poolTarget is the audit target of pool id; a provider's is
// provider:<pool>/<id>. kind:id, as every event's (docs/api.md
// "sts.v1.AuditService"); before, pool/<id> and provider/<pool>/<id>.
func poolTarget(id string) string { return "pool:" + id }

// CreateProvider validates p and adds it to its pool (its times are set
// here). Errors: [sts.Invalid] (naming the field), [sts.NotFound] (pool),
// [sts.FailedPrecondition] (a shared issuer in a pool without a
// condition), [sts.AlreadyExists], [sts.Unavailable].
func (s *Service) CreateProvider(ctx context.Context, c Caller, p storage.Provider) (storage.Provider, error) {
	if err := s.checkProvider(p, true, true); err != nil {
		return storage.Provider{}, err
	}
	pool, err := s.checkProviderRefs(ctx, p)
	if err != nil {
		return storage.Provider{}, err
	}
	now := storage.Now(s.now())
	p.CreatedAt, p.UpdatedAt = now, now
	err = s.changeAudited(ctx, c,
		func(tx storage.Tx) error {
			if err := recheck(ctx, tx, p.PoolID); err != nil {
				return err
			}
			return tx.CreateProvider(ctx, p)
		},
		func() error {
			if err := s.recheckPlain(ctx, p.PoolID); err != nil {
				return err
			}
			return s.store.CreateProvider(ctx, p)
		},
		func() (string, string, string, string) {
			return pool.OrgID, ActionProviderCreate, providerTarget(p.PoolID, p.ID), providerCreateDetail(p)
		})
	if err != nil {
		// A pool deleted since the check fails the foreign key: not found.
		return storage.Provider{}, changeErr(err, "provider "+p.PoolID+"/"+p.ID)
	}
	s.logger().InfoContext(ctx, "provider created", "pool", p.PoolID, "provider", p.ID, "issuer", p.Issuer)
	s.changed(ctx, providerTarget(p.PoolID, p.ID))
	return p, nil
}

// checkProviderRefs checks p's pool: it exists and, when p trusts a shared
// issuer, has a condition. It returns the pool.
func (s *Service) checkProviderRefs(ctx context.Context, p storage.Provider) (storage.Pool, error) {
	pool, err := s.GetPool(ctx, p.PoolID)
	if err != nil {
		return storage.Pool{}, err
	}
	if policy.IsSharedIssuer(p.Issuer) && strings.TrimSpace(pool.Condition) == "" {
		return storage.Pool{}, sts.Errorf(sts.FailedPrecondition,
			"issuer: pool %q has no condition and %s signs tokens for every tenant: set the pool's condition first", pool.ID, p.Issuer)
	}
	return pool, nil
}

// GetProvider returns provider id of pool poolID. Errors: [sts.Invalid],
// [sts.NotFound], [sts.Unavailable].
func (s *Service) GetProvider(ctx context.Context, poolID, id string) (storage.Provider, error) {
	if err := checkRef("pool_id", "pool", poolID); err != nil {
		return storage.Provider{}, err
	}
	if err := checkRef("provider_id", "provider", id); err != nil {
		return storage.Provider{}, err
	}
	p, err := s.store.GetProvider(ctx, poolID, id)
	if err != nil {
		return storage.Provider{}, storageErr(err, "provider "+poolID+"/"+id)
	}
	return p, nil
}

// ListProviders returns the providers of pool poolID, or of every pool
// when poolID is empty, ordered by (pool, ID). Errors: [sts.NotFound]
// (pool), [sts.Unavailable].
func (s *Service) ListProviders(ctx context.Context, poolID string) ([]storage.Provider, error) {
	if poolID != "" {
		if _, err := s.GetPool(ctx, poolID); err != nil {
			return nil, err
		}
	}
	list, err := s.store.ListProviders(ctx, poolID)
	if err != nil {
		return nil, storageErr(err, "providers")
	}
	return list, nil
}

// ProviderUpdate changes the fields that are set; nil keeps the current
// value. An empty JWKSURI returns to OIDC discovery; an empty JWKS
// removes the uploaded key set.
type ProviderUpdate struct {
	Issuer     *string
	Audiences  *[]string
	JWKSURI    *string
	JWKS       *[]byte
	Algorithms *[]string
	OneTimeUse *bool
	// AllowMissingKID and AllowMultipleAudiences: see storage.Provider.
	AllowMissingKID        *bool
	AllowMultipleAudiences *bool
	Disabled               *bool
}

// setsKeys reports whether u changes where the provider's keys come from.
func (u ProviderUpdate) setsKeys() bool {
	return u.Issuer != nil || u.JWKSURI != nil || u.JWKS != nil
}

func (u ProviderUpdate) fields() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"issuer", u.Issuer != nil}, {"audiences", u.Audiences != nil}, {"jwks_uri", u.JWKSURI != nil},
		{"jwks", u.JWKS != nil}, {"algorithms", u.Algorithms != nil}, {"one_time_use", u.OneTimeUse != nil},
		{"allow_missing_kid", u.AllowMissingKID != nil}, {"allow_multiple_audiences", u.AllowMultipleAudiences != nil},
		{"disabled", u.Disabled != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// Apply sets the fields of u on p.
func (u ProviderUpdate) Apply(p *storage.Provider) {
	if u.Issuer != nil {
		p.Issuer = *u.Issuer
	}
	if u.Audiences != nil {
		p.Audiences = append([]string(nil), *u.Audiences...)
	}
	if u.JWKSURI != nil {
		p.JWKSURI = *u.JWKSURI
	}
	if u.JWKS != nil {
		p.JWKS = nil
		if len(*u.JWKS) > 0 {
			p.JWKS = bytes.Clone(*u.JWKS)
		}
	}
	if u.Algorithms != nil {
		p.Algorithms = append([]string(nil), *u.Algorithms...)
	}
	if u.OneTimeUse != nil {
		p.OneTimeUse = *u.OneTimeUse
	}
	if u.AllowMissingKID != nil {
		p.AllowMissingKID = *u.AllowMissingKID
	}
	if u.AllowMultipleAudiences != nil {
		p.AllowMultipleAudiences = *u.AllowMultipleAudiences
	}
	if u.Disabled != nil {
		p.Disabled = *u.Disabled
	}
}

// UpdateProvider applies u to provider id of pool poolID in one
// UpdateProvider: either every field changes or none does. Disabling
// refuses the provider's tokens at once on this node (see SetOnChange).
// Errors: [sts.Invalid] (naming the field, or nothing set),
// [sts.NotFound], [sts.FailedPrecondition] (a shared issuer in a pool
// without a condition), [sts.Unavailable].
func (s *Service) UpdateProvider(ctx context.Context, c Caller, poolID, id string, u ProviderUpdate) (storage.Provider, error) {
	fields := u.fields()
	if err := checkRef("pool_id", "pool", poolID); err != nil {
		return storage.Provider{}, err
	}
	if err := checkRef("provider_id", "provider", id); err != nil {
		return storage.Provider{}, err
	}
	if len(fields) == 0 {
		return storage.Provider{}, invalid("nothing to update: set at least one field")
	}
	old, err := s.GetProvider(ctx, poolID, id)
	if err != nil {
		return storage.Provider{}, err
	}
	p := old
	u.Apply(&p)
	if err := s.checkProvider(p, u.setsKeys(), u.Issuer != nil); err != nil {
		return storage.Provider{}, err
	}
	pool, err := s.checkProviderRefs(ctx, p)
	if err != nil {
		return storage.Provider{}, err
	}
	now := storage.Now(s.now())
	var out storage.Provider
	var ended []string // the trust-deciding fields the update changes
	update := func(cur storage.Provider) (storage.Provider, error) {
		prev := cur
		u.Apply(&cur)
		if err := s.checkProvider(cur, u.setsKeys(), u.Issuer != nil); err != nil {
			return cur, err
		}
		cur.UpdatedAt = now
		out, ended = cur, providerTrustChanges(prev, cur)
		return cur, nil
	}
	// As for a pool: a change of what the provider trusts ends what it let
	// in before, in the update's unit of work (docs/security.md A-62).
	row := func() storage.Revocation {
		reason, _ := trustEnded("provider", ended)
		return storage.ProviderRevocation(poolID, id, reason, s.now(), s.revocationKeep())
	}
	change := func(tx storage.Tx) error {
		if err := recheck(ctx, tx, poolID); err != nil {
			return err
		}
		if err := tx.UpdateProvider(ctx, poolID, id, update); err != nil || len(ended) == 0 {
			return err
		}
		return tx.PutRevocation(ctx, row())
	}
	plain := func() error {
		if err := s.recheckPlain(ctx, poolID); err != nil {
			return err
		}
		if ended = providerTrustChanges(old, p); len(ended) > 0 {
			if err := s.store.PutRevocation(ctx, row()); err != nil {
				return err
			}
		}
		return s.store.UpdateProvider(ctx, poolID, id, update)
	}
	err = s.changeAudited(ctx, c, change, plain,
		func() (string, string, string, string) {
			return pool.OrgID, ActionProviderUpdate, providerTarget(poolID, id), updateDetail("provider", fields, u.Disabled != nil && *u.Disabled, ended)
		})
	if err != nil {
		return storage.Provider{}, changeErr(err, "provider "+poolID+"/"+id)
	}
	s.logger().InfoContext(ctx, "provider updated", "pool", poolID, "provider", id, "fields", fields, "ended_earlier_tokens", ended)
	s.changed(ctx, providerTarget(poolID, id))
	return out, nil
}

// DeleteProvider removes provider id from pool poolID. A provider the
// configuration file declares is refused. Errors: [sts.Invalid],
// [sts.NotFound], [sts.FailedPrecondition] (declared in the file),
// [sts.Unavailable].
func (s *Service) DeleteProvider(ctx context.Context, c Caller, poolID, id string) error {
	if _, err := s.GetProvider(ctx, poolID, id); err != nil {
		return err
	}
	// As for a pool (docs/security.md A-59).
	if s.limits.Declared[TrustID{Pool: poolID, Provider: id}] {
		return sts.Errorf(sts.FailedPrecondition, "provider %s of pool %s is declared in the configuration file; disable it (`sts provider disable %s --pool %s`) or remove it from the file first", id, poolID, id, poolID)
	}
	pool, err := s.GetPool(ctx, poolID)
	if err != nil {
		return err
	}
	// As for a pool: the row, so the ID used again brings nothing back
	// (docs/security.md A-54), commits with the deletion once the
	// caller's authorization holds on the pool's row; without a
	// unit of work it is written first.
	row := func() storage.Revocation {
		return storage.ProviderRevocation(poolID, id, "provider deleted", s.now(), s.revocationKeep())
	}
	err = s.changeAudited(ctx, c,
		func(tx storage.Tx) error {
			if err := recheck(ctx, tx, poolID); err != nil {
				return err
			}
			if err := tx.PutRevocation(ctx, row()); err != nil {
				return err
			}
			return tx.DeleteProvider(ctx, poolID, id)
		},
		func() error {
			if err := s.recheckPlain(ctx, poolID); err != nil {
				return err
			}
			if err := s.store.PutRevocation(ctx, row()); err != nil {
				return err
			}
			return s.store.DeleteProvider(ctx, poolID, id)
		},
		func() (string, string, string, string) {
			return pool.OrgID, ActionProviderDelete, providerTarget(poolID, id), ""
		})
	if err != nil {
		return changeErr(err, "provider "+poolID+"/"+id)
	}
	s.logger().InfoContext(ctx, "provider deleted", "pool", poolID, "provider", id)
	s.changed(ctx, providerTarget(poolID, id))
	return nil
}
