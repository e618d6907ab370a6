package api

import (
	"context"
	"errors"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
)

// auditSwitch fails AppendAudit while down is set.
type auditSwitch struct {
	storage.Store
	down bool
}

func (a *auditSwitch) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if a.down {
		return errors.New("audit table unavailable")
	}
	return a.Store.AppendAudit(ctx, events...)
}

// WithTx fails the unit of work's audit writes too while down is set.
func (a *auditSwitch) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return a.Store.WithTx(ctx, func(tx storage.Tx) error {
		if a.down {
			return fn(downTx{tx})
		}
		return fn(tx)
	})
}

type downTx struct{ storage.Tx }

func (downTx) AppendAudit(context.Context, ...storage.AuditEvent) error {
	return errors.New("audit table unavailable")
}

// TestAdminChangesAudited: organizations and principals created, disabled
// and re-enabled through the admin API each leave an audit event naming
// the caller; a create whose event cannot be stored is undone and answered
// unavailable, so no change goes unaudited.
func TestAdminChangesAudited(t *testing.T) {
	t.Parallel()
	store := &auditSwitch{Store: newSQLiteStore(t)}
	e := newEnvOn(t, store, nil)
	c := e.clients(e.srv.URL)
	ctx := as(e.admin)
	adminActor := "principal:" + e.principalNamed(t, "admin").ID
	events := func(action string) []storage.AuditEvent {
		t.Helper()
		evs, err := store.ListAudit(context.Background(), storage.AuditFilter{Action: action, Actor: adminActor})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}

	o, err := c.org.CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.principal.CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{OrganizationId: o.GetOrganization().GetId(),
		Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	id := p.GetPrincipal().GetId()
	for _, d := range []bool{true, false} {
		if _, err := c.principal.SetPrincipalDisabled(ctx, &stsv1.SetPrincipalDisabledRequest{PrincipalId: id, Disabled: d}); err != nil {
			t.Fatal(err)
		}
	}
	for action, target := range map[string]string{
		ActionOrganizationCreate: "organization:" + o.GetOrganization().GetId(),
		ActionPrincipalCreate:    "principal:" + id,
		ActionPrincipalDisable:   "principal:" + id,
		ActionPrincipalEnable:    "principal:" + id,
	} {
		if evs := events(action); len(evs) != 1 || evs[0].Target != target || evs[0].OrgID != o.GetOrganization().GetId() {
			t.Errorf("%s events = %+v, want one for %s", action, evs, target)
		}
	}

	store.down = true
	_, err = c.org.CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: "initech"})
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("CreateOrganization with the audit down = %v, want unavailable", err)
	}
	_, err = c.principal.CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{OrganizationId: e.org.ID,
		Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "ghost"})
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("CreatePrincipal with the audit down = %v, want unavailable", err)
	}
	// A disable whose event cannot be stored changes nothing.
	if _, err := c.principal.SetPrincipalDisabled(ctx, &stsv1.SetPrincipalDisabledRequest{PrincipalId: id, Disabled: true}); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("SetPrincipalDisabled with the audit down = %v, want unavailable", err)
	}
	if got, err := store.Store.GetPrincipal(context.Background(), id); err != nil || got.Disabled {
		t.Errorf("principal after a disable whose event failed: disabled=%v, %v; want it enabled", got.Disabled, err)
	}
	store.down = false
	orgs, _ := store.ListOrganizations(context.Background())
	principals, _ := store.ListPrincipals(context.Background(), e.org.ID)
	for _, o := range orgs {
		if o.Name == "initech" {
			t.Error("an organization whose audit event failed was kept")
		}
	}
	for _, p := range principals {
		if p.Name == "ghost" {
			t.Error("a principal whose audit event failed was kept")
		}
	}
}
