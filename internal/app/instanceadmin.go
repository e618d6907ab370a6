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
	var orgID string
	err := store.UpdatePrincipal(ctx, principalID, func(p storage.Principal) (storage.Principal, error) {
		p.InstanceAdmin, p.UpdatedAt, orgID = on, storage.Now(time.Now()), p.OrgID
		return p, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("principal %q not found", principalID)
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	action := actionInstanceAdminGrant
	if !on {
		action = actionInstanceAdminRevoke
	}
	if err := store.AppendAudit(ctx, c.Event(time.Now(), orgID, action, "principal:"+principalID, "success", "")); err != nil {
		return fmt.Errorf("instance_admin changed but its audit event was not stored: %w", err)
	}
	return nil
}
