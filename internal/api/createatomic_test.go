package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// crashAfterCreate is auditSwitch down with the clean-up deletes failing
// too, as a crash between a create and its event would leave things.
type crashAfterCreate struct{ *auditSwitch }

func (crashAfterCreate) DeleteOrganization(context.Context, string) error {
	return errors.New("process died here")
}

func (crashAfterCreate) DeletePrincipal(context.Context, string) error {
	return errors.New("process died here")
}

// TestCreateIsAtomicWithItsEvent: an organization or principal is never
// stored without its audit event (docs/design.md#audit).
func TestCreateIsAtomicWithItsEvent(t *testing.T) {
	t.Parallel()
	real := newSQLiteStore(t)
	org := storage.Organization{ID: storage.NewID(), Name: "acme", Tier: DefaultTier}
	if err := real.CreateOrganization(t.Context(), org); err != nil {
		t.Fatal(err)
	}
	store := crashAfterCreate{&auditSwitch{Store: real, down: true}}
	c := pat.Caller{Actor: "cli"}
	if _, err := CreateOrganization(t.Context(), store, c, "globex", "", time.Now()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("CreateOrganization with the audit trail down = %v, want Unavailable", err)
	}
	if _, err := CreatePrincipal(t.Context(), store, c, org.ID, storage.PrincipalServiceAccount, "bot", "", time.Now()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("CreatePrincipal with the audit trail down = %v, want Unavailable", err)
	}
	orgs, err := real.ListOrganizations(t.Context())
	if err != nil || len(orgs) != 1 {
		t.Errorf("organizations = %d (%v), want only the first: one was stored without its event", len(orgs), err)
	}
	ps, err := real.ListPrincipals(t.Context(), org.ID)
	if err != nil || len(ps) != 0 {
		t.Errorf("principals = %d (%v), want none stored without its event", len(ps), err)
	}
}

// TestChangesAreAtomicWithTheirEvents: an organization renamed or deleted,
// a principal disabled or deleted (a runner with its key), whose audit
// event cannot be stored, is left as it was (docs/design.md#audit).
func TestChangesAreAtomicWithTheirEvents(t *testing.T) {
	t.Parallel()
	real := newSQLiteStore(t)
	ctx := t.Context()
	now := storage.Now(time.Now())
	org := storage.Organization{ID: storage.NewID(), Name: "acme", Tier: DefaultTier, CreatedAt: now, UpdatedAt: now}
	empty := storage.Organization{ID: storage.NewID(), Name: "empty", Tier: DefaultTier, CreatedAt: now, UpdatedAt: now}
	for _, o := range []storage.Organization{org, empty} {
		if err := real.CreateOrganization(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	p := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalServiceAccount, Name: "bot", CreatedAt: now, UpdatedAt: now}
	if err := real.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	runner := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalRunner, Name: "runner", CreatedAt: now, UpdatedAt: now}
	if err := real.CreatePrincipal(ctx, runner); err != nil {
		t.Fatal(err)
	}
	key := storage.RunnerKey{RunnerID: runner.ID, OrgID: org.ID, PublicKey: make([]byte, 32), CreatedAt: now, UpdatedAt: now}
	if err := real.PutRunnerKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(real, testPepper)
	if err != nil {
		t.Fatal(err)
	}
	store := &auditSwitch{Store: real, down: true}
	c := pat.Caller{Actor: "cli"}
	name := "renamed"
	if _, err := UpdateOrganization(ctx, store, c, org.ID, &name, nil, time.Now()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("UpdateOrganization with the audit trail down = %v, want Unavailable", err)
	}
	if err := DeleteOrganization(ctx, store, c, empty.ID, nil, time.Now()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("DeleteOrganization with the audit trail down = %v, want Unavailable", err)
	}
	if err := DeletePrincipal(ctx, store, pats, c, p, time.Now()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("DeletePrincipal with the audit trail down = %v, want Unavailable", err)
	}
	if err := DeletePrincipal(ctx, store, pats, c, runner, time.Now()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("DeletePrincipal(runner) with the audit trail down = %v, want Unavailable", err)
	}
	if _, err := real.GetRunnerKey(ctx, runner.ID); err != nil {
		t.Errorf("runner key after its runner's failed delete: %v, want it kept (docs/security.md A-48)", err)
	}
	if got, err := real.GetOrganization(ctx, org.ID); err != nil || got.Name != "acme" {
		t.Errorf("organization after a failed rename: %+v, %v; want it unchanged", got, err)
	}
	if _, err := real.GetOrganization(ctx, empty.ID); err != nil {
		t.Errorf("organization after a failed delete: %v, want it kept", err)
	}
	if _, err := real.GetPrincipal(ctx, p.ID); err != nil {
		t.Errorf("principal after a failed delete: %v, want it kept", err)
	}
}
