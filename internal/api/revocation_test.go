package api

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/opensts/sts/internal/storage"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestRevokeSubjectDefaultKeep: without a keep, a subject revocation is
// kept for the server's keys.max_token_lifetime plus the leeway
// (Handler.RevocationKeep), not a fixed 12 h: a deployment with longer
// tokens would otherwise see them work again when the row is gone. An
// explicit keep is used as given.
func TestRevokeSubjectDefaultKeep(t *testing.T) {
	e := newEnv(t, func(h *Handler) { h.RevocationKeep = 49*time.Hour + time.Minute })
	c := stsv1connect.NewRevocationServiceClient(e.srv.Client(), e.srv.URL)
	for _, tc := range []struct {
		keep *durationpb.Duration
		want time.Duration
	}{
		{nil, 49*time.Hour + time.Minute},
		{durationpb.New(13 * time.Hour), 13 * time.Hour},
	} {
		res, err := c.RevokeSubject(as(e.admin), &stsv1.RevokeSubjectRequest{Subject: "repo:acme/app", Keep: tc.keep})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.GetExpiresAt().AsTime().Sub(res.GetIssuedBefore().AsTime()); got != tc.want {
			t.Errorf("keep %v: revocation kept %v, want %v", tc.keep, got, tc.want)
		}
	}
}

// TestRevokeSubjectEventOrganization: docs/security.md D-19. Revoking a
// principal's tokens is recorded in the principal's organization, where
// its administrators read it; a subject that names no principal (a pool's
// mapped subject, which pools of any organization may produce) stays
// instance-level.
func TestRevokeSubjectEventOrganization(t *testing.T) {
	e := newEnv(t, nil)
	c := stsv1connect.NewRevocationServiceClient(e.srv.Client(), e.srv.URL)
	for _, tc := range []struct{ subject, org string }{
		{e.user.ID, e.org.ID},
		{"repo:acme/app", ""},
		{storage.NewID(), ""}, // no such principal
	} {
		if _, err := c.RevokeSubject(as(e.admin), &stsv1.RevokeSubjectRequest{Subject: tc.subject}); err != nil {
			t.Fatal(err)
		}
		evs, err := e.store.ListAudit(t.Context(), storage.AuditFilter{Action: ActionSubjectRevoke, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs {
			if ev.Target == "subject:"+tc.subject {
				found = true
				if ev.OrgID != tc.org {
					t.Errorf("%s of %q: org %q, want %q", ev.Action, tc.subject, ev.OrgID, tc.org)
				}
			}
		}
		if !found {
			t.Errorf("no %s event for %q", ActionSubjectRevoke, tc.subject)
		}
	}
}
