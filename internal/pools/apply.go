package pools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// ConfigStore is what applying the trust configuration needs.
type ConfigStore interface {
	storage.OrganizationStore
	storage.TrustStore
	storage.AuditStore
}

// TrustConfig is the trust configuration of the server's file, already
// checked and turned into storage records; ApplyConfig writes it.
type TrustConfig struct {
	Orgs      []storage.Organization
	Pools     []storage.Pool
	Providers []storage.Provider
	// Paths names each pool's config path ("pools[ci]") for messages.
	Paths map[string]string
}

// Empty reports whether the configuration declares nothing to apply.
func (c *TrustConfig) Empty() bool { return c == nil || len(c.Orgs)+len(c.Pools) == 0 }

// Changes says what one ApplyConfig did, as "org/acme",
// "pool/ci", "provider/ci/github".
type Changes struct {
	Created, Updated []string
	Unchanged        int
}

// Changed reports whether anything was created or updated.
func (c Changes) Changed() bool { return len(c.Created)+len(c.Updated) > 0 }

// ApplyConfig makes storage match the plan: each organization, pool and
// provider of the file is created or updated to match it; records the file
// does not list are left alone (they may come from the CLI or the API).
// Running it twice changes nothing the second time. Each change is audited
// with actor "config". Another replica applying the same file at the same
// moment is fine: a lost creation race turns into an update.
func ApplyConfig(ctx context.Context, s ConfigStore, plan *TrustConfig, now time.Time) (Changes, error) {
	now = storage.Now(now)
	var ch Changes
	var events []storage.AuditEvent
	note := func(kind, target string, created, updated bool) {
		action := ""
		switch {
		case created:
			ch.Created, action = append(ch.Created, kind+"/"+target), kind+".create"
		case updated:
			ch.Updated, action = append(ch.Updated, kind+"/"+target), kind+".update"
		default:
			ch.Unchanged++
			return
		}
		events = append(events, storage.AuditEvent{ID: storage.NewID(), Time: now, Actor: "config", Action: action, Target: kind + "/" + target, Outcome: "success"})
	}
	for _, o := range plan.Orgs {
		c, u, err := upsert(ctx, o, s.GetOrganization, s.CreateOrganization, s.UpdateOrganization, o.ID, sameOrg, now)
		if err != nil {
			return ch, fmt.Errorf("organizations[%s]: %w", o.ID, err)
		}
		note("org", o.ID, c, u)
	}
	for _, p := range plan.Pools {
		if _, err := s.GetOrganization(ctx, p.OrgID); errors.Is(err, storage.ErrNotFound) {
			return ch, fmt.Errorf("%s.organization: organization %q does not exist (declare it under organizations or create it first)", plan.Paths[p.ID], p.OrgID)
		}
		c, u, err := upsert(ctx, p, s.GetPool, s.CreatePool, s.UpdatePool, p.ID, samePool, now)
		if err != nil {
			return ch, fmt.Errorf("%s: %w", plan.Paths[p.ID], err)
		}
		note("pool", p.ID, c, u)
	}
	for _, p := range plan.Providers {
		key := p.PoolID + "/" + p.ID
		c, u, err := upsert(ctx, p,
			func(ctx context.Context, _ string) (storage.Provider, error) {
				return s.GetProvider(ctx, p.PoolID, p.ID)
			},
			s.CreateProvider,
			func(ctx context.Context, _ string, fn func(storage.Provider) (storage.Provider, error)) error {
				return s.UpdateProvider(ctx, p.PoolID, p.ID, fn)
			}, key, sameProvider, now)
		if err != nil {
			return ch, fmt.Errorf("%s.providers[%s]: %w", plan.Paths[p.PoolID], p.ID, err)
		}
		note("provider", key, c, u)
	}
	if len(events) > 0 {
		if err := s.AppendAudit(ctx, events...); err != nil {
			return ch, fmt.Errorf("audit trust changes: %w", err)
		}
	}
	return ch, nil
}

// upsert creates want or updates the stored record to match it (keeping
// its creation time), and reports which it did; neither means it matched.
func upsert[T any](ctx context.Context, want T,
	get func(context.Context, string) (T, error),
	create func(context.Context, T) error,
	update func(context.Context, string, func(T) (T, error)) error,
	id string, same func(a, b T) bool, now time.Time,
) (created, updated bool, err error) {
	old, err := get(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		err = create(ctx, withTimes(want, nil, now))
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return err == nil, false, err
		}
	case err != nil:
		return false, false, err
	case same(old, want):
		return false, false, nil
	}
	err = update(ctx, id, func(old T) (T, error) {
		if same(old, want) {
			return old, errUnchanged
		}
		return withTimes(want, &old, now), nil
	})
	if errors.Is(err, errUnchanged) {
		return false, false, nil
	}
	return false, err == nil, err
}

var errUnchanged = errors.New("unchanged")

// withTimes returns want with the record times set: created now, or keeping
// old's creation time and updated now.
func withTimes[T any](want T, old *T, now time.Time) T {
	created := now
	var r any = want
	switch w := r.(type) {
	case storage.Organization:
		if old != nil {
			created = any(*old).(storage.Organization).CreatedAt
		}
		w.CreatedAt, w.UpdatedAt = created, now
		r = w
	case storage.Pool:
		if old != nil {
			created = any(*old).(storage.Pool).CreatedAt
		}
		w.CreatedAt, w.UpdatedAt = created, now
		r = w
	case storage.Provider:
		if old != nil {
			created = any(*old).(storage.Provider).CreatedAt
		}
		w.CreatedAt, w.UpdatedAt = created, now
		r = w
	}
	return r.(T)
}

func sameOrg(a, b storage.Organization) bool { return a.Name == b.Name && a.Tier == b.Tier }

func samePool(a, b storage.Pool) bool {
	return a.OrgID == b.OrgID && a.DisplayName == b.DisplayName && a.Disabled == b.Disabled &&
		a.IdentityClaim == b.IdentityClaim && a.Condition == b.Condition &&
		a.Mapping.Subject == b.Mapping.Subject && a.Mapping.Groups == b.Mapping.Groups &&
		maps.Equal(a.Mapping.Attributes, b.Mapping.Attributes) && slices.Equal(a.Scopes, b.Scopes) &&
		a.MaxTokenLifetime == b.MaxTokenLifetime && a.PrincipalID == b.PrincipalID &&
		a.AllowUnauthenticated == b.AllowUnauthenticated
}

func sameProvider(a, b storage.Provider) bool {
	return a.Issuer == b.Issuer && a.JWKSURI == b.JWKSURI && bytes.Equal(a.JWKS, b.JWKS) &&
		slices.Equal(a.Audiences, b.Audiences) && slices.Equal(a.Algorithms, b.Algorithms) &&
		a.OneTimeUse == b.OneTimeUse && a.Disabled == b.Disabled &&
		a.AllowMissingKID == b.AllowMissingKID && a.AllowMultipleAudiences == b.AllowMultipleAudiences
}
