package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// undoWatch is an AdminStore without a unit of work whose audit events
// fail, so a create is undone by a delete; it records whether each
// delete's context had a deadline.
type undoWatch struct {
	AdminStore
	deadlines []bool
}

func (u *undoWatch) AppendAudit(context.Context, ...storage.AuditEvent) error {
	return errors.New("audit table unavailable")
}

func (u *undoWatch) DeleteOrganization(ctx context.Context, id string) error {
	_, ok := ctx.Deadline()
	u.deadlines = append(u.deadlines, ok)
	return u.AdminStore.DeleteOrganization(ctx, id)
}

func (u *undoWatch) DeletePrincipal(ctx context.Context, id string) error {
	_, ok := ctx.Deadline()
	u.deadlines = append(u.deadlines, ok)
	return u.AdminStore.DeletePrincipal(ctx, id)
}

// TestAdminCreateUndoHasADeadline (docs/security.md F-87): the delete that
// undoes an organization or principal whose audit event failed runs
// detached from the request's cancellation but with a deadline of its own
// (storage.Detach): context.WithoutCancel dropped it, and on a database
// that stopped answering the undo waited until TCP gave up.
func TestAdminCreateUndoHasADeadline(t *testing.T) {
	t.Parallel()
	base := newSQLiteStore(t)
	now := time.Now()
	o, err := CreateOrganization(t.Context(), base, pat.Caller{}, "initech", "", now)
	if err != nil {
		t.Fatal(err)
	}
	u := &undoWatch{AdminStore: base}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := CreateOrganization(ctx, u, pat.Caller{}, "globex", "", now); err == nil {
		t.Fatal("CreateOrganization with its event failing succeeded")
	}
	if _, err := CreatePrincipal(ctx, u, pat.Caller{}, o.ID, storage.PrincipalUser, "bob", "", now); err == nil {
		t.Fatal("CreatePrincipal with its event failing succeeded")
	}
	if len(u.deadlines) != 2 {
		t.Fatalf("%d undos, want 2 (organization, principal)", len(u.deadlines))
	}
	for i, ok := range u.deadlines {
		if !ok {
			t.Errorf("undo %d ran without a deadline", i)
		}
	}
}
