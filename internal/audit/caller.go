package audit

import (
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Caller is who makes a change, as the audit trail names it. The PAT,
// client and pool services and the admin API all record their changes
// with it.
type Caller struct {
	// Actor names the caller: "principal:<id>", "cli", "bootstrap" or
	// "config".
	Actor string
	// RequestID is the HTTP request ID, if any.
	RequestID string
}

// Event is the audit event of one change c made at now.
func (c Caller) Event(now time.Time, orgID, action, target, outcome, detail string) storage.AuditEvent {
	return storage.AuditEvent{
		ID: storage.NewID(), Time: storage.Now(now), OrgID: orgID, Actor: c.Actor, Action: action,
		Target: target, RequestID: c.RequestID, Outcome: outcome, Detail: detail,
	}
}
