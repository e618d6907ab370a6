package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

const (
	actionInstanceAdminGrant  = "principal.instance_admin.grant"
	actionInstanceAdminRevoke = "principal.instance_admin.revoke"
)

// SetInstanceAdmin sets or clears a principal's instance_admin flag and
// records the change. Only the bootstrap and the CLI call it: no API call
// grants the role. A PAT already in use sees the change within the PAT
// cache TTL. A grant is refused, changing nothing, while someone else may
// hold a credential of the principal (othersCredentials).
func SetInstanceAdmin(ctx context.Context, store storage.Store, c audit.Caller, principalID string, on bool) error {
	action := actionInstanceAdminGrant
	if !on {
		action = actionInstanceAdminRevoke
	}
	if on {
		found, err := othersCredentials(ctx, store, principalID)
		if err != nil {
			return err
		}
		if len(found) > 0 {
			return othersErr{principalID, found}
		}
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
		if on {
			// Again with the principal's row taken for this write: a PAT,
			// exchange token, client or pool an organization administrator
			// made for the principal after the look above, and committed
			// before the row was ours, is seen now. A PAT, exchange token
			// or client made later holds the row, waits for this grant and
			// then finds the instance role, which it refuses, and so does a
			// pool bound later (docs/security.md ).
			found, err := othersCredentials(ctx, store, principalID)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				return othersErr{principalID, found}
			}
		}
		auditErr = tx.AppendAudit(ctx, c.Event(time.Now(), orgID, action, "principal:"+principalID, "success", ""))
		return auditErr
	})
	var oe othersErr
	switch {
	case errors.As(err, &oe):
		return oe
	case auditErr != nil:
		return fmt.Errorf("instance_admin not changed: its audit event could not be stored: %w", auditErr)
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("principal %q not found", principalID)
	case err != nil:
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// othersCredentials lists the credentials of a principal that others may
// hold, each with how to end it; a principal with any must not be promoted
// (docs/security.md A-76). An organization administrator
// may mint a PAT for a user of its organization, and bind a client or a
// pool to a principal of it, and mint an exchange token for one, as long
// as that principal is not an instance administrator
// (docs/authorization.md, Roles); promoting it afterwards would hand the
// instance role to whoever holds that PAT's secret, the client's secret or
// keys, a token the pool trusts, or an exchange token not yet redeemed. So
// no unspent exchange token may have been minted by a credential (only
// the operator's, `sts exchange-token create` in direct mode, has no
// creator: one minted by the principal's own credential counts too, as a
// PAT's secret set over the network does), and every PAT of the principal must have its secret last set (created or
// regenerated, by the audit trail) by the operator (the CLI, the
// bootstrap), and no client or pool may be bound to it. A secret set over
// the network counts as someone else's even when the event names the
// principal itself: a PAT planted by someone else acts as the principal,
// so it can regenerate itself, or make another PAT and be deleted, and
// the newest event would then name the principal. A PAT whose events are
// gone counts as someone else's too.
func othersCredentials(ctx context.Context, store storage.Store, principalID string) ([]string, error) {
	p, err := store.GetPrincipal(ctx, principalID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("principal %q not found", principalID)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var found []string
	pats, err := store.ListPATs(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	for _, t := range pats {
		actor, err := secretSetBy(ctx, store, t.ID)
		if err != nil {
			return nil, err
		}
		if actor != "cli" && actor != "bootstrap" {
			found = append(found, fmt.Sprintf("PAT %s (its secret set by %s; revoke it, sts pat revoke %s, and mint a new one after the grant)", t.ID, cmp.Or(actor, "an unknown actor"), t.ID))
		}
	}
	clients, err := store.ListClients(ctx, p.OrgID)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	for _, cl := range clients {
		if cl.PrincipalID == p.ID {
			found = append(found, fmt.Sprintf("client %s (delete it: sts client delete %s)", cl.ID, cl.ID))
		}
	}
	pools, err := store.ListPools(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	for _, pl := range pools {
		if pl.PrincipalID == p.ID {
			found = append(found, fmt.Sprintf("pool %s (bind it to another principal or delete it)", pl.ID))
		}
	}
	xts, err := store.ListExchangeTokensOfPrincipal(ctx, p.ID, time.Now())
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	for _, x := range xts {
		if x.CreatorID != "" {
			found = append(found, fmt.Sprintf("exchange token %s (minted by principal:%s; unspent until %s: wait for it to expire or be redeemed)",
				x.ID, x.CreatorID, x.ExpiresAt.UTC().Format(time.RFC3339)))
		}
	}
	return found, nil
}

// secretSetBy is the actor of the newest event that set PAT id's secret
// (pat.create or pat.regenerate), "" when the audit trail holds none.
func secretSetBy(ctx context.Context, store storage.AuditStore, id string) (string, error) {
	var newest storage.AuditEvent
	for _, action := range []string{pat.ActionPATCreate, pat.ActionPATRegenerate} {
		evs, err := store.ListAudit(ctx, storage.AuditFilter{Action: action, Target: pat.Target(id), Limit: 1})
		if err != nil {
			return "", fmt.Errorf("audit trail: %w", err)
		}
		if len(evs) == 1 && (newest.ID == "" || evs[0].Time.After(newest.Time)) {
			newest = evs[0]
		}
	}
	return newest.Actor, nil
}

// warnConfiguredInstanceAdmins logs, for each principal the configuration's
// instance_admins names, the credentials others may hold: the list
// makes them instance administrators with no grant that could refuse. A
// warning, not a refused start: a PAT whose audit events the retention
// purged counts as someone else's, and a deployment that was fine would
// not come up after an upgrade.
func warnConfiguredInstanceAdmins(ctx context.Context, store storage.Store, ids []string, logger *slog.Logger) {
	for _, id := range ids {
		found, err := othersCredentials(ctx, store, id)
		switch {
		case err != nil:
			logger.WarnContext(ctx, "instance_admins: cannot check the principal's credentials", "principal", id, "error", err)
		case len(found) > 0:
			logger.WarnContext(ctx, "instance_admins: others may hold credentials of this instance administrator, which act as the instance role; end them",
				"principal", id, "credentials", strings.Join(found, "; "))
		}
	}
}

// othersErr refuses a grant: found lists the credentials of the principal
// others may hold (othersCredentials).
type othersErr struct {
	principalID string
	found       []string
}

func (e othersErr) Error() string {
	return fmt.Sprintf("instance_admin not granted: others may hold credentials of principal %s, which would then act as the instance role: %s",
		e.principalID, strings.Join(e.found, "; "))
}
