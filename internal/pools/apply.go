package pools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// KeptDisabled lists the pools and providers the file declares enabled
	// but storage holds disabled: they stay disabled (the file never
	// enables, docs/configuration.md#trust-configuration-organizations-pools-providers),
	// and the server warns about each.
	KeptDisabled []string
}

// Changed reports whether anything was created or updated.
func (c Changes) Changed() bool { return len(c.Created)+len(c.Updated) > 0 }

// ApplyConfig makes storage match the plan: each organization, pool and
// provider of the file is created or updated to match it; records the file
// does not list are left alone (they may come from the CLI or the API).
// One exception: the file never enables. A pool or provider disabled in
// storage stays disabled whatever the file says, its other fields applied,
// and is listed in KeptDisabled (docs/security.md A-55); the file's
// disabled: true still disables. Running it twice changes nothing the
// second time. Each change is audited with actor "config", in the
// organization it belongs to, its detail naming the fields changed.
// Another replica applying the same file at the same moment is fine: a
// lost creation race turns into an update.
func ApplyConfig(ctx context.Context, s ConfigStore, plan *TrustConfig, now time.Time) (Changes, error) {
	now = storage.Now(now)
	var ch Changes
	var events []storage.AuditEvent
	note := func(orgID, kind, target string, r result) {
		if r.kept {
			ch.KeptDisabled = append(ch.KeptDisabled, kind+"/"+target)
		}
		action, detail := "", ""
		switch {
		case r.created:
			ch.Created, action = append(ch.Created, kind+"/"+target), kind+".create"
		case r.updated:
			ch.Updated, action = append(ch.Updated, kind+"/"+target), kind+".update"
			detail = changedDetail(r.changed, r.disabled)
		default:
			ch.Unchanged++
			return
		}
		events = append(events, storage.AuditEvent{ID: storage.NewID(), Time: now, OrgID: orgID, Actor: "config",
			Action: action, Target: kind + "/" + target, Outcome: "success", Detail: detail})
	}
	for _, o := range plan.Orgs {
		r, err := upsert(ctx, o, s.GetOrganization, s.CreateOrganization, s.UpdateOrganization, o.ID, orgChanges, nil, now)
		if err != nil {
			return ch, fmt.Errorf("organizations[%s]: %w", o.ID, err)
		}
		note(o.ID, "org", o.ID, r)
	}
	orgOf := map[string]string{}
	for _, p := range plan.Pools {
		orgOf[p.ID] = p.OrgID
		if _, err := s.GetOrganization(ctx, p.OrgID); errors.Is(err, storage.ErrNotFound) {
			return ch, fmt.Errorf("%s.organization: organization %q does not exist (declare it under organizations or create it first)", plan.Paths[p.ID], p.OrgID)
		}
		r, err := upsert(ctx, p, s.GetPool, s.CreatePool, s.UpdatePool, p.ID, poolChanges, keepPoolDisabled, now)
		if err != nil {
			return ch, fmt.Errorf("%s: %w", plan.Paths[p.ID], err)
		}
		note(p.OrgID, "pool", p.ID, r)
	}
	for _, p := range plan.Providers {
		key := p.PoolID + "/" + p.ID
		r, err := upsert(ctx, p,
			func(ctx context.Context, _ string) (storage.Provider, error) {
				return s.GetProvider(ctx, p.PoolID, p.ID)
			},
			s.CreateProvider,
			func(ctx context.Context, _ string, fn func(storage.Provider) (storage.Provider, error)) error {
				return s.UpdateProvider(ctx, p.PoolID, p.ID, fn)
			}, key, providerChanges, keepProviderDisabled, now)
		if err != nil {
			return ch, fmt.Errorf("%s.providers[%s]: %w", plan.Paths[p.PoolID], p.ID, err)
		}
		note(orgOf[p.PoolID], "provider", key, r)
	}
	if len(events) > 0 {
		if err := s.AppendAudit(ctx, events...); err != nil {
			return ch, fmt.Errorf("audit trust changes: %w", err)
		}
	}
	return ch, nil
}

// result is what upsert did to one record.
type result struct {
	created, updated bool
	// changed names the fields an update changed; disabled is the
	// record's disabled state after it.
	changed  []string
	disabled bool
	// kept: the file's enabled state was not applied over a disabled
	// record.
	kept bool
}

// upsert creates want or updates the stored record to match it (keeping
// its creation time), and reports which it did; neither means it matched.
// keep, when set, adjusts want to the stored record before comparing
// (the disabled state the file never undoes) and reports whether it did.
func upsert[T any](ctx context.Context, want T,
	get func(context.Context, string) (T, error),
	create func(context.Context, T) error,
	update func(context.Context, string, func(T) (T, error)) error,
	id string, changes func(old, want T) ([]string, bool), keep func(old, want T) (T, bool), now time.Time,
) (result, error) {
	var r result
	merge := func(old T) T {
		if keep == nil {
			return want
		}
		w, kept := keep(old, want)
		r.kept = kept
		return w
	}
	old, err := get(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		err = create(ctx, withTimes(want, nil, now))
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return result{created: err == nil}, err
		}
	case err != nil:
		return r, err
	default:
		if fields, _ := changes(old, merge(old)); len(fields) == 0 {
			return r, nil
		}
	}
	err = update(ctx, id, func(old T) (T, error) {
		w := merge(old)
		r.changed, r.disabled = changes(old, w)
		if len(r.changed) == 0 {
			return old, errUnchanged
		}
		return withTimes(w, &old, now), nil
	})
	if errors.Is(err, errUnchanged) {
		return result{kept: r.kept}, nil
	}
	r.updated = err == nil
	return r, err
}

// keepPoolDisabled keeps a pool disabled in storage disabled: the file
// never enables (docs/security.md A-55).
func keepPoolDisabled(old, want storage.Pool) (storage.Pool, bool) {
	if old.Disabled && !want.Disabled {
		want.Disabled = true
		return want, true
	}
	return want, false
}

// keepProviderDisabled is keepPoolDisabled for a provider.
func keepProviderDisabled(old, want storage.Provider) (storage.Provider, bool) {
	if old.Disabled && !want.Disabled {
		want.Disabled = true
		return want, true
	}
	return want, false
}

// changedDetail is a config update event's detail, as the API's:
// "changed scopes,disabled; disabled". Field names only, never values.
func changedDetail(fields []string, disabled bool) string {
	d := "changed " + strings.Join(fields, ",")
	if slices.Contains(fields, "disabled") {
		d += map[bool]string{true: "; disabled", false: "; enabled"}[disabled]
	}
	return d
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

// differing returns the names of the fields whose flag is set, in order.
func differing(fields ...field) []string {
	var out []string
	for _, f := range fields {
		if f.differs {
			out = append(out, f.name)
		}
	}
	return out
}

type field struct {
	name    string
	differs bool
}

// orgChanges, poolChanges and providerChanges name the fields in which
// want differs from old (the API's field names), and say whether want is
// disabled.
func orgChanges(old, want storage.Organization) ([]string, bool) {
	return differing(field{"name", old.Name != want.Name}, field{"tier", old.Tier != want.Tier}), false
}

func poolChanges(a, b storage.Pool) ([]string, bool) {
	return differing(
		field{"organization_id", a.OrgID != b.OrgID}, field{"display_name", a.DisplayName != b.DisplayName},
		field{"disabled", a.Disabled != b.Disabled}, field{"identity_claim", a.IdentityClaim != b.IdentityClaim},
		field{"condition", a.Condition != b.Condition}, field{"mapping.subject", a.Mapping.Subject != b.Mapping.Subject},
		field{"mapping.groups", a.Mapping.Groups != b.Mapping.Groups},
		field{"mapping.attributes", !maps.Equal(a.Mapping.Attributes, b.Mapping.Attributes)},
		field{"scopes", !slices.Equal(a.Scopes, b.Scopes)}, field{"max_token_lifetime", a.MaxTokenLifetime != b.MaxTokenLifetime},
		field{"principal_id", a.PrincipalID != b.PrincipalID},
		field{"allow_unauthenticated", a.AllowUnauthenticated != b.AllowUnauthenticated},
		field{"audiences", !slices.Equal(a.Audiences, b.Audiences)},
		field{"google_default_scopes", !slices.Equal(a.GoogleDefaultScopes, b.GoogleDefaultScopes)},
	), b.Disabled
}

func providerChanges(a, b storage.Provider) ([]string, bool) {
	return differing(
		field{"issuer", a.Issuer != b.Issuer}, field{"audiences", !slices.Equal(a.Audiences, b.Audiences)},
		field{"jwks_uri", a.JWKSURI != b.JWKSURI}, field{"jwks", !bytes.Equal(a.JWKS, b.JWKS)},
		field{"algorithms", !slices.Equal(a.Algorithms, b.Algorithms)}, field{"one_time_use", a.OneTimeUse != b.OneTimeUse},
		field{"allow_missing_kid", a.AllowMissingKID != b.AllowMissingKID},
		field{"allow_multiple_audiences", a.AllowMultipleAudiences != b.AllowMultipleAudiences},
		field{"disabled", a.Disabled != b.Disabled},
	), b.Disabled
}
