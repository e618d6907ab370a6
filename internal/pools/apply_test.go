package pools_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/ststest"
)

// exampleTrust is the README's example trust configuration as the server
// plans it from the file: one organization, one pool, one provider.
func exampleTrust() *pools.TrustConfig {
	return &pools.TrustConfig{
		Orgs: []storage.Organization{{ID: "acme", Name: "Acme", Tier: "enterprise"}},
		Pools: []storage.Pool{{
			ID: "ci", OrgID: "acme",
			Condition:        `assertion.repository_owner == "acme"`,
			Mapping:          storage.Mapping{Subject: "assertion.sub", Attributes: map[string]string{"repo": "assertion.repository"}},
			Scopes:           []string{"read", "write"},
			MaxTokenLifetime: time.Hour,
		}},
		Providers:      []storage.Provider{{PoolID: "ci", ID: "github", Issuer: "https://token.actions.githubusercontent.com", Audiences: []string{"sts"}}},
		Paths:          map[string]string{"ci": "pools[ci]"},
		RevocationKeep: 13 * time.Hour,
	}
}

// apply is pools.ApplyConfig with its result spread out.
func apply(ctx context.Context, s pools.ConfigStore, c *pools.TrustConfig, now time.Time) (created, updated []string, unchanged int, err error) {
	ch, err := pools.ApplyConfig(ctx, s, c, now)
	return ch.Created, ch.Updated, ch.Unchanged, err
}

// testApply: applying twice changes nothing the second time, an edit is an
// update, and records the file does not declare are left alone.
func testApply(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// A pool created with the CLI, not in the file.
	if err := s.CreateOrganization(ctx, storage.Organization{ID: "other", Name: "Other", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePool(ctx, storage.Pool{ID: "manual", OrgID: "other", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	created, updated, unchanged, err := apply(ctx, s, exampleTrust(), now)
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if want := []string{"org/acme", "pool/ci", "provider/ci/github"}; !slices.Equal(created, want) || len(updated) != 0 {
		t.Errorf("first apply created %v updated %v, want created %v", created, updated, want)
	}
	created, updated, unchanged, err = apply(ctx, s, exampleTrust(), now.Add(time.Hour))
	if err != nil || len(created)+len(updated) != 0 || unchanged != 3 {
		t.Errorf("second apply created %v updated %v unchanged %d, %v; want nothing changed", created, updated, unchanged, err)
	}

	cfg := exampleTrust()
	cfg.Pools[0].Condition = `assertion.repository_owner == "acme" && assertion.ref == "refs/heads/main"`
	cfg.Providers[0].Audiences = []string{"sts", "sts2"}
	created, updated, _, err = apply(ctx, s, cfg, now.Add(2*time.Hour))
	if err != nil || !slices.Equal(updated, []string{"pool/ci", "provider/ci/github"}) || len(created) != 0 {
		t.Errorf("apply after an edit: created %v updated %v, %v", created, updated, err)
	}
	p, err := s.GetPool(ctx, "ci")
	if err != nil || p.Condition != cfg.Pools[0].Condition || !p.CreatedAt.Equal(now) || !p.UpdatedAt.Equal(now.Add(2*time.Hour)) {
		t.Errorf("pool after update = %+v, %v", p, err)
	}
	if _, err := s.GetPool(ctx, "manual"); err != nil {
		t.Errorf("a pool not in the file was touched: %v", err)
	}
	evs, err := s.ListAudit(ctx, storage.AuditFilter{})
	if err != nil || len(evs) != 5 {
		t.Errorf("audit events = %d, %v; want 3 creations and 2 updates", len(evs), err)
	}

	// A pool whose organization exists nowhere is refused by name.
	cfg = exampleTrust()
	cfg.Orgs = nil
	cfg.Pools[0].OrgID = "ghost"
	if _, _, _, err := apply(ctx, s, cfg, now); err == nil || !strings.Contains(err.Error(), `pools[ci].organization: organization "ghost" does not exist`) {
		t.Errorf("apply with an unknown organization = %v", err)
	}
}

func TestApplyConfigSQLite(t *testing.T) { testApply(t, ststest.NewStore(t)) }

func TestApplyConfigPostgres(t *testing.T) {
	dsn := ststest.PostgresDSN(t)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	testApply(t, s)
}

// testApplyKeepsDisabled: a pool or provider disabled outside the file (an
// incident, through the API or the CLI) stays disabled when the file,
// which says enabled, is applied again at a later start; the file's other
// fields still apply, its disabled: true still disables, and every event
// names the pool's organization and what changed (docs/security.md A-55).
func testApplyKeepsDisabled(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if _, err := pools.ApplyConfig(ctx, s, exampleTrust(), now); err != nil {
		t.Fatal(err)
	}
	disable := func(on bool) {
		t.Helper()
		if err := s.UpdatePool(ctx, "ci", func(p storage.Pool) (storage.Pool, error) { p.Disabled = on; return p, nil }); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateProvider(ctx, "ci", "github", func(p storage.Provider) (storage.Provider, error) { p.Disabled = on; return p, nil }); err != nil {
			t.Fatal(err)
		}
	}
	disable(true)

	cfg := exampleTrust()
	cfg.Pools[0].Scopes = []string{"read"}
	ch, err := pools.ApplyConfig(ctx, s, cfg, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pool/ci", "provider/ci/github"}; !slices.Equal(ch.KeptDisabled, want) || !slices.Equal(ch.Updated, []string{"pool/ci"}) {
		t.Errorf("apply over the disabled pool: kept disabled %v, updated %v; want %v, [pool/ci]", ch.KeptDisabled, ch.Updated, want)
	}
	p, err := s.GetPool(ctx, "ci")
	if err != nil || !p.Disabled || !slices.Equal(p.Scopes, []string{"read"}) {
		t.Errorf("pool after the file's enabled version = %+v, %v; want disabled with scopes [read]", p, err)
	}
	pr, err := s.GetProvider(ctx, "ci", "github")
	if err != nil || !pr.Disabled {
		t.Errorf("provider after the file's enabled version = %+v, %v; want disabled", pr, err)
	}
	// Applying again (another start) changes nothing: both stay disabled.
	ch, err = pools.ApplyConfig(ctx, s, cfg, now.Add(2*time.Hour))
	if err != nil || ch.Changed() || len(ch.KeptDisabled) != 2 {
		t.Errorf("apply again = %+v, %v; want nothing changed", ch, err)
	}

	// The organization's administrators see the file's changes, with what
	// changed: the creations and the scopes, never the disabled state.
	evs, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: "acme", Actor: "config"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Action+" "+e.Target+" "+e.Detail)
	}
	slices.Sort(got)
	want := []string{"organization.create organization:acme ", "pool.create pool:ci ", "pool.update pool:ci changed scopes", "provider.create provider:ci/github issuer=https://token.actions.githubusercontent.com"}
	if !slices.Equal(got, want) {
		t.Errorf("the organization's config events = %q, want %q", got, want)
	}

	// The reverse still applies: the file's disabled: true disables.
	disable(false)
	cfg.Pools[0].Disabled, cfg.Providers[0].Disabled = true, true
	if ch, err := pools.ApplyConfig(ctx, s, cfg, now.Add(3*time.Hour)); err != nil || len(ch.KeptDisabled) != 0 {
		t.Fatalf("apply of disabled: true = %+v, %v", ch, err)
	}
	if p, err := s.GetPool(ctx, "ci"); err != nil || !p.Disabled {
		t.Errorf("pool after the file's disabled: true = %+v, %v", p, err)
	}
	if pr, err := s.GetProvider(ctx, "ci", "github"); err != nil || !pr.Disabled {
		t.Errorf("provider after the file's disabled: true = %+v, %v", pr, err)
	}
	evs, err = s.ListAudit(ctx, storage.AuditFilter{OrgID: "acme", Actor: "config", Since: now.Add(3 * time.Hour)})
	got = got[:0]
	for _, e := range evs {
		got = append(got, e.Action+" "+e.Target+" "+e.Detail)
	}
	slices.Sort(got)
	want = []string{"pool.update pool:ci changed disabled; disabled", "provider.update provider:ci/github changed disabled; disabled"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("config events of the file's disable = %q, %v; want %q", got, err, want)
	}
}

func TestApplyConfigKeepsDisabled(t *testing.T) { testApplyKeepsDisabled(t, ststest.NewStore(t)) }

// TestApplyConfigAudiences: a file edit of a pool's audiences or Google
// default scopes alone is applied, as every other field's.
func TestApplyConfigAudiences(t *testing.T) {
	s, ctx := ststest.NewStore(t), t.Context()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if _, err := pools.ApplyConfig(ctx, s, exampleTrust(), now); err != nil {
		t.Fatal(err)
	}
	cfg := exampleTrust()
	cfg.Pools[0].Audiences = []string{"https://api.example"}
	cfg.Pools[0].GoogleDefaultScopes = []string{"read"}
	ch, err := pools.ApplyConfig(ctx, s, cfg, now.Add(time.Hour))
	if err != nil || !slices.Equal(ch.Updated, []string{"pool/ci"}) {
		t.Fatalf("apply of new audiences = %+v, %v; want pool/ci updated", ch, err)
	}
	p, err := s.GetPool(ctx, "ci")
	if err != nil || !slices.Equal(p.Audiences, cfg.Pools[0].Audiences) || !slices.Equal(p.GoogleDefaultScopes, []string{"read"}) {
		t.Errorf("pool after the edit = %+v, %v", p, err)
	}
	evs, err := s.ListAudit(ctx, storage.AuditFilter{Action: "pool.update"})
	if err != nil || len(evs) != 1 || evs[0].Detail != "changed audiences,google_default_scopes" {
		t.Errorf("update events = %+v, %v", evs, err)
	}
}

// testApplyTrustChange: the file applied again unchanged, at every start,
// stores no revocation row, nor does an edit of what decides no trust
// (a display name, an audience added, scopes); an edit of a pool's
// condition or a provider's issuer stores the row a deletion leaves,
// ending the tokens exchanged through it up to the start that applied
// it, says so in the update's event and in Changes.Ended, and applying
// that file again changes nothing more (docs/security.md A-62). Before,
// the file's edits stored no row.
func testApplyTrustChange(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	pool, provider := storage.RevocationIDPool("ci"), storage.RevocationIDProvider("ci", "github")
	noRows := func(when string) {
		t.Helper()
		for _, id := range []string{pool, provider} {
			if r, stored := revocationOf(t, s, id); stored {
				t.Errorf("%s: stored %+v; want no row", when, r)
			}
		}
	}
	for i := range 3 {
		ch, err := pools.ApplyConfig(ctx, s, exampleTrust(), now.Add(time.Duration(i)*time.Hour))
		if err != nil || len(ch.Ended) != 0 {
			t.Fatalf("apply %d of the same file = %+v, %v", i+1, ch, err)
		}
	}
	noRows("the same file applied three times")

	cfg := exampleTrust()
	cfg.Pools[0].DisplayName = "Release pipelines"
	cfg.Pools[0].Scopes = []string{"read"}
	cfg.Providers[0].Audiences = []string{"sts", "sts2"}
	if ch, err := pools.ApplyConfig(ctx, s, cfg, now.Add(3*time.Hour)); err != nil || len(ch.Updated) != 2 || len(ch.Ended) != 0 {
		t.Fatalf("apply of a display name, scopes and an audience added = %+v, %v; want 2 updated, nothing ended", ch, err)
	}
	noRows("a display name, scopes and an audience added")

	at := now.Add(4 * time.Hour)
	cfg.Pools[0].Condition = `assertion.repository_owner == "acme" && assertion.ref == "refs/heads/main"`
	cfg.Providers[0].Issuer = "https://gitlab.example"
	ch, err := pools.ApplyConfig(ctx, s, cfg, at)
	if want := []string{"pool/ci", "provider/ci/github"}; err != nil || !slices.Equal(ch.Ended, want) {
		t.Fatalf("apply of a condition and an issuer = %+v, %v; want ended %v", ch, err, want)
	}
	for id, reason := range map[string]string{pool: "pool trust changed (condition)", provider: "provider trust changed (issuer)"} {
		r, stored := revocationOf(t, s, id)
		if !stored || !r.IssuedBefore.Equal(at) || !r.ExpiresAt.Equal(at.Add(13*time.Hour)) || r.Reason != reason {
			t.Errorf("row %s = %+v, %v; want %q up to %v, kept 13h", id, r, stored, reason, at)
		}
	}
	evs, err := s.ListAudit(ctx, storage.AuditFilter{Actor: "config", Since: at})
	var got []string
	for _, e := range evs {
		got = append(got, e.Target+" "+e.Detail)
	}
	slices.Sort(got)
	want := []string{"pool:ci changed condition; earlier tokens ended (condition)", "provider:ci/github changed issuer; earlier tokens ended (issuer)"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("config events = %q, %v; want %q", got, err, want)
	}

	// The edited file applied again at the next start: nothing more ends.
	if ch, err := pools.ApplyConfig(ctx, s, cfg, at.Add(time.Hour)); err != nil || ch.Changed() || len(ch.Ended) != 0 {
		t.Errorf("the edited file applied again = %+v, %v; want nothing changed", ch, err)
	}
	if r, _ := revocationOf(t, s, pool); !r.IssuedBefore.Equal(at) {
		t.Errorf("row after the edited file applied again = %+v; want it as the edit left it", r)
	}
}

func TestApplyConfigTrustChangeSQLite(t *testing.T) { testApplyTrustChange(t, ststest.NewStore(t)) }

func TestApplyConfigTrustChangePostgres(t *testing.T) {
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: ststest.PostgresDSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	testApplyTrustChange(t, s)
}

// TestApplyConfigOrgEventsAsTheAPIs: the file's organization changes are
// audited with the API's action names and target form
// (docs/api.md#stsv1auditservice), so a filter on organization.update finds them.
func TestApplyConfigOrgEventsAsTheAPIs(t *testing.T) {
	s, ctx := ststest.NewStore(t), t.Context()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := exampleTrust()
	if _, err := pools.ApplyConfig(ctx, s, cfg, now); err != nil {
		t.Fatal(err)
	}
	cfg.Orgs[0].Name = "Acme Inc"
	if _, err := pools.ApplyConfig(ctx, s, cfg, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ action, detail string }{{"organization.create", ""}, {"organization.update", "changed name"}} {
		evs, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: "acme", Actor: "config", Action: c.action})
		if err != nil || len(evs) != 1 || evs[0].Target != "organization:acme" || evs[0].Detail != c.detail {
			t.Errorf("config events %s = %+v, %v; want one on organization:acme, detail %q", c.action, evs, err, c.detail)
		}
	}
}

// TestApplyConfigCreateEventsAsTheAPIs: a pool or provider the file creates
// is audited with the detail the API's creation of the same record has
// (provider.create: issuer=<issuer>), so the trail reads the same
// whichever way the record came.
func TestApplyConfigCreateEventsAsTheAPIs(t *testing.T) {
	ctx := t.Context()
	fromFile, fromAPI := ststest.NewStore(t), ststest.NewStore(t)
	cfg := exampleTrust()
	if _, err := pools.ApplyConfig(ctx, fromFile, cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	svc, err := pools.NewService(fromAPI, pools.Limits{MaxTokenLifetime: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := fromAPI.CreateOrganization(ctx, cfg.Orgs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreatePool(ctx, pools.Caller{Actor: "cli"}, cfg.Pools[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateProvider(ctx, pools.Caller{Actor: "cli"}, cfg.Providers[0]); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"pool.create", "provider.create"} {
		detail := func(s storage.Store) string {
			evs, err := s.ListAudit(ctx, storage.AuditFilter{Action: action})
			if err != nil || len(evs) != 1 {
				t.Fatalf("%s events = %+v, %v; want one", action, evs, err)
			}
			return evs[0].Target + " " + evs[0].Detail
		}
		if file, api := detail(fromFile), detail(fromAPI); file != api {
			t.Errorf("%s from the file: %q; from the API: %q", action, file, api)
		}
	}
}

// TestUpdateKeepsAStoredDisplayName: docs/security.md T-135. A display_name
// stored before the rule (or from the configuration file) does not block
// an update that leaves it, above all `sts pool disable`; an update that
// sets such a name is refused and changes nothing.
func TestUpdateKeepsAStoredDisplayName(t *testing.T) {
	ctx := t.Context()
	st := ststest.NewStore(t)
	if _, err := pools.ApplyConfig(ctx, st, exampleTrust(), time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	svc, err := pools.NewService(st, pools.Limits{MaxTokenLifetime: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, stored := range []string{"ci\u202Egpj.exe", "line\nbreak"} {
		if err := st.UpdatePool(ctx, "ci", func(p storage.Pool) (storage.Pool, error) {
			p.DisplayName, p.Disabled = stored, false
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
		on := true
		p, err := svc.UpdatePool(ctx, pools.Caller{Actor: "test"}, "ci", pools.PoolUpdate{Disabled: &on})
		if err != nil || !p.Disabled || p.DisplayName != stored {
			t.Errorf("disable pool ci (display_name %+q) = %+q disabled=%v, %v; want disabled, name kept", stored, p.DisplayName, p.Disabled, err)
		}
		bad := "a\u2066b"
		if _, err := svc.UpdatePool(ctx, pools.Caller{Actor: "test"}, "ci", pools.PoolUpdate{DisplayName: &bad}); sts.ErrorCode(err) != sts.Invalid {
			t.Errorf("set display_name %+q = %v, want invalid", bad, err)
		}
		if p, _ := st.GetPool(ctx, "ci"); p.DisplayName != stored {
			t.Errorf("display_name after a refused update = %+q, want %+q", p.DisplayName, stored)
		}
	}
}
