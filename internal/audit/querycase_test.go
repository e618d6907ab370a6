package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest"
)

// TestListFiltersLowerUUIDs (docs/security.md T-215): an organization,
// actor or target filter naming a UUID in upper case finds the events of
// that UUID, as every sts.v1 ID does (T-210): the UUID part of kind:id is
// lowered, the kind and any non-UUID ID are matched as sent. The filter
// was matched as text and found nothing.
func TestListFiltersLowerUUIDs(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	org, p := storage.NewID(), storage.NewID()
	if err := store.AppendAudit(t.Context(), storage.AuditEvent{ID: storage.NewID(), Time: storage.Now(time.Now()), OrgID: org,
		Actor: "principal:" + p, Action: "principal.create", Target: "principal:" + p, Outcome: "success"}); err != nil {
		t.Fatal(err)
	}
	up := strings.ToUpper
	for name, q := range map[string]audit.Query{
		"organization": {OrgID: up(org)},
		"actor":        {Actor: "principal:" + up(p)},
		"target":       {Target: "principal:" + up(p)},
	} {
		page, err := audit.List(t.Context(), store, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 1 {
			t.Errorf("%s filter in upper case: %d events, want the 1 of that UUID", name, len(page.Events))
		}
	}
	// The kind is not a UUID and is matched as sent.
	page, err := audit.List(t.Context(), store, audit.Query{Target: "PRINCIPAL:" + p})
	if err != nil || len(page.Events) != 0 {
		t.Errorf("target of kind PRINCIPAL: %d events, %v; want none", len(page.Events), err)
	}
}

// TestListSubjectFilterAsSent (docs/security.md T-215, T-210): a revoked
// subject is a case-sensitive string. One in UUID form that names no
// principal (a pool's subject) is revoked, and its event written, as
// sent; one naming a principal in upper case is written lower-cased. A
// subject filter finds both by the spelling the revocation was asked
// with. Lowering every UUID-form subject filter found no event of a
// subject revoked in upper case.
func TestListSubjectFilterAsSent(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	org := storage.NewID()
	external, principal := strings.ToUpper(storage.NewID()), storage.NewID()
	for _, target := range []string{"subject:" + external, "subject:" + principal} {
		if err := store.AppendAudit(t.Context(), storage.AuditEvent{ID: storage.NewID(), Time: storage.Now(time.Now()), OrgID: org,
			Actor: "cli", Action: "subject.revoke", Target: target, Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"a pool's subject in upper case, as revoked": "subject:" + external,
		"a principal's ID in upper case":             "subject:" + strings.ToUpper(principal),
		"a principal's ID":                           "subject:" + principal,
	} {
		page, err := audit.List(t.Context(), store, audit.Query{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 1 {
			t.Errorf("target filter of %s: %d events, want 1", name, len(page.Events))
		}
	}
	// The lower-case spelling of the pool's subject is another subject.
	page, err := audit.List(t.Context(), store, audit.Query{Target: "subject:" + strings.ToLower(external)})
	if err != nil || len(page.Events) != 0 {
		t.Errorf("target filter of the pool's subject in lower case: %d events, %v; want none", len(page.Events), err)
	}
}
