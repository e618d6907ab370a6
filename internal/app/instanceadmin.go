package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
)

const (
	actionInstanceAdminGrant  = "principal.instance_admin.grant"
	actionInstanceAdminRevoke = "principal.instance_admin.revoke"
)

// SetInstanceAdmin sets or clears a principal's instance_admin flag and
// records the change. Only the bootstrap and the CLI call it: no API call
// grants the role. A PAT already in use sees the change within the PAT
// cache TTL.
func SetInstanceAdmin(ctx context.Context, store storage.Store, c audit.Caller, principalID string, on bool) error {
	action := actionInstanceAdminGrant
	if !on {
		action = actionInstanceAdminRevoke
	}
	// The change commits with its audit event, or not at all
	// (docs/design.md#audit).
	var auditErr error
	err := store.WithTx(ctx, func(tx storage.Tx) error {
		var orgID string
		err := tx.UpdatePrincipal(ctx, principalID, func(p storage.Principal) (storage.Principal, error) {
			p.InstanceAdmin, p.UpdatedAt, orgID = on, storage.Now(time.Now()), p.OrgID
			return p, nil
		})
		if err != nil {
			return err
		}
		auditErr = tx.AppendAudit(ctx, c.Event(time.Now(), orgID, action, "principal:"+principalID, "success", ""))
		return auditErr
	})
	switch {
	case auditErr != nil:
		return fmt.Errorf("instance_admin not changed: its audit event could not be stored: %w", auditErr)
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("principal %q not found", principalID)
	case err != nil:
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}
