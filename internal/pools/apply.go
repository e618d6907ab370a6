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

// ConfigStore is what applying the trust configuration needs: an update
// runs in a unit of work, with the revocation row a change of trust
// stores (docs/security.md A-62).
type ConfigStore interface {
	storage.OrganizationStore
	storage.TrustStore
	storage.AuditStore
	storage.UnitOfWork
}

// TrustConfig is the trust configuration of the server's file, already
// checked and turned into storage records; ApplyConfig writes it.
type TrustConfig struct {
	Orgs      []storage.Organization
	Pools     []storage.Pool
	Providers []storage.Provider
	// Paths names each pool's config path ("pools[ci]") for messages.
	Paths map[string]string
	// RevocationKeep is how long the row a change of trust stores is kept
	// ([Limits.RevocationKeep] of the server's settings); required.
	RevocationKeep time.Duration
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
	// Ended lists the pools and providers whose trust the file changed:
	// their earlier tokens were ended (docs/security.md A-62).
	Ended []string
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
// lost creation race turns into an update. An update that changes what a
// pool or provider trusts (see poolTrustChanges) stores, in its unit of
// work, the row that ends the tokens exchanged through it until then, as
// the API's update does (docs/security.md A-62); a file applied unchanged
// updates nothing and so ends nothing.
func ApplyConfig(ctx context.Context, s ConfigStore, plan *TrustConfig, now time.Time) (Changes, error) {
	if plan.RevocationKeep <= 0 {
		return Changes{}, errors.New("pools: TrustConfig.RevocationKeep must be positive")
	}
	now = storage.Now(now)
	var ch Changes
	var events []storage.AuditEvent
	// created is the detail of a creation, the API's for the same record.
	note := func(orgID, kind, target, created string, r result) {
		if r.kept {
			ch.KeptDisabled = append(ch.KeptDisabled, kind+"/"+target)
		}
		noun, audited := auditNames(kind, target)
		action, detail := "", ""
		switch {
		case r.created:
			ch.Created, action, detail = append(ch.Created, kind+"/"+target), noun+".create", created
		case r.updated:
			ch.Updated, action = append(ch.Updated, kind+"/"+target), noun+".update"
			detail = updateDetail(kind, r.changed, r.disabled, r.ended)
			if len(r.ended) > 0 {
				ch.Ended = append(ch.Ended, kind+"/"+target)
			}
		default:
			ch.Unchanged++
			return
		}
		events = append(events, storage.AuditEvent{ID: storage.NewID(), Time: now, OrgID: orgID, Actor: "config",
			Action: action, Target: audited, Outcome: "success", Detail: detail})
	}
	orgs := records[storage.Organization]{
		get: s.GetOrganization, create: s.CreateOrganization, changes: orgChanges,
		update: func(ctx context.Context, tx storage.Tx, id string, fn func(storage.Organization) (storage.Organization, error)) error {
			return tx.UpdateOrganization(ctx, id, fn)
		},
	}
	for _, o := range plan.Orgs {
		r, err := upsert(ctx, s, o, o.ID, orgs, now)
		if err != nil {
			return ch, fmt.Errorf("organizations[%s]: %w", o.ID, err)
		}
		note(o.ID, "org", o.ID, "", r)
	}
	poolRecs := records[storage.Pool]{
		get: s.GetPool, create: s.CreatePool, changes: poolChanges, keep: keepPoolDisabled, ends: poolTrustChanges,
		update: func(ctx context.Context, tx storage.Tx, id string, fn func(storage.Pool) (storage.Pool, error)) error {
			return tx.UpdatePool(ctx, id, fn)
		},
	}
	orgOf := map[string]string{}
	for _, p := range plan.Pools {
		orgOf[p.ID] = p.OrgID
		if _, err := s.GetOrganization(ctx, p.OrgID); errors.Is(err, storage.ErrNotFound) {
			return ch, fmt.Errorf("%s.organization: organization %q does not exist (declare it under organizations or create it first)", plan.Paths[p.ID], p.OrgID)
		}
		recs := poolRecs
		recs.row = func(ended []string, at time.Time) storage.Revocation {
			reason, _ := trustEnded("pool", ended)
			return storage.PoolRevocation(p.ID, reason, at, plan.RevocationKeep)
		}
		r, err := upsert(ctx, s, p, p.ID, recs, now)
		if err != nil {
			return ch, fmt.Errorf("%s: %w", plan.Paths[p.ID], err)
		}
		note(p.OrgID, "pool", p.ID, "", r)
	}
	for _, p := range plan.Providers {
		key := p.PoolID + "/" + p.ID
		r, err := upsert(ctx, s, p, key, records[storage.Provider]{
			get: func(ctx context.Context, _ string) (storage.Provider, error) {
				return s.GetProvider(ctx, p.PoolID, p.ID)
			},
			create: s.CreateProvider,
			update: func(ctx context.Context, tx storage.Tx, _ string, fn func(storage.Provider) (storage.Provider, error)) error {
				return tx.UpdateProvider(ctx, p.PoolID, p.ID, fn)
			},
			changes: providerChanges, keep: keepProviderDisabled, ends: providerTrustChanges,
			row: func(ended []string, at time.Time) storage.Revocation {
				reason, _ := trustEnded("provider", ended)
				return storage.ProviderRevocation(p.PoolID, p.ID, reason, at, plan.RevocationKeep)
			},
		}, now)
		if err != nil {
			return ch, fmt.Errorf("%s.providers[%s]: %w", plan.Paths[p.PoolID], p.ID, err)
		}
		note(orgOf[p.PoolID], "provider", key, providerCreateDetail(p), r)
	}
	if len(events) > 0 {
		if err := s.AppendAudit(ctx, events...); err != nil {
			return ch, fmt.Errorf("audit trust changes: %w", err)
		}
	}
	return ch, nil
}

// auditNames is the noun of a kind's audit actions and the audit target of
// one record, the API's for the same change (docs/api.md#stsv1auditservice):
// "organization.update" on "organization:acme", "pool.update" on
// "pool:ci", "provider.update" on "provider:ci/github".
func auditNames(kind, target string) (noun, audited string) {
	if kind == "org" {
		return "organization", "organization:" + target
	}
	return kind, kind + ":" + target
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
	// ended names the trust-deciding fields an update changed: its row
	// ended the record's earlier tokens.
	ended []string
}

// records is how upsert reads and writes one kind of record.
type records[T any] struct {
	get    func(context.Context, string) (T, error)
	create func(context.Context, T) error
	update func(context.Context, storage.Tx, string, func(T) (T, error)) error
	// changes names the fields in which want differs from old and says
	// whether want is disabled.
	changes func(old, want T) ([]string, bool)
	// keep, when set, adjusts want to the stored record before comparing
	// (the disabled state the file never undoes) and reports whether it
	// did.
	keep func(old, want T) (T, bool)
	// ends, when set, names the trust-deciding fields in which want
	// differs from old; row is then the revocation row that ends the
	// record's earlier tokens, stored with the update.
	ends func(old, want T) []string
	row  func(ended []string, at time.Time) storage.Revocation
}

// upsert creates want or updates the stored record to match it (keeping
// its creation time), and reports which it did; neither means it matched.
// An update runs in one unit of work of u, with the row rec.row when it
// changes a trust-deciding field.
func upsert[T any](ctx context.Context, u storage.UnitOfWork, want T, id string, rec records[T], now time.Time) (result, error) {
	var r result
	merge := func(old T) T {
		if rec.keep == nil {
			return want
		}
		w, kept := rec.keep(old, want)
		r.kept = kept
		return w
	}
	old, err := rec.get(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		err = rec.create(ctx, withTimes(want, nil, now))
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return result{created: err == nil}, err
		}
	case err != nil:
		return r, err
	default:
		if fields, _ := rec.changes(old, merge(old)); len(fields) == 0 {
			return r, nil
		}
	}
	err = u.WithTx(ctx, func(tx storage.Tx) error {
		err := rec.update(ctx, tx, id, func(old T) (T, error) {
			w := merge(old)
			r.changed, r.disabled = rec.changes(old, w)
			r.ended = nil
			if rec.ends != nil {
				r.ended = rec.ends(old, w)
			}
			if len(r.changed) == 0 {
				return old, errUnchanged
			}
			return withTimes(w, &old, now), nil
		})
		if err != nil || len(r.ended) == 0 {
			return err
		}
		return tx.PutRevocation(ctx, rec.row(r.ended, now))
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

// updateDetail is the detail of a kind's update event, the API's and the
// file's alike: the fields changed, the disabled state when it changed,
// and the trust-deciding fields whose change ended the earlier tokens
// (docs/security.md A-62): "changed scopes,disabled; disabled". Field
// names only, never values.
func updateDetail(kind string, fields []string, disabled bool, ended []string) string {
	d := "changed " + strings.Join(fields, ",")
	if slices.Contains(fields, "disabled") {
		d += map[bool]string{true: "; disabled", false: "; enabled"}[disabled]
	}
	if len(ended) > 0 {
		_, e := trustEnded(kind, ended)
		d += e
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
