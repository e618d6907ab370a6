package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestRevokeSubjectDefaultKeep: without a keep, a subject revocation is
// kept for the server's keys.max_token_lifetime plus the leeway
// (Handler.RevocationKeep), not a fixed 12 h: a deployment with longer
// tokens would otherwise see them work again when the row is gone. An
// explicit keep is used as given.
func TestRevokeSubjectDefaultKeep(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// TestRevokeSubjectTimesInRange: issuedBefore and keep outside the proto3
// range (nanos out of range or of the other sign, a year past 9999) are
// invalid_argument naming the field in the binary protocols, as protojson
// refuses them in JSON, and so is an issuedBefore whose revocation would
// be kept past 9999-12-31 (issuedBefore plus keep), which no Timestamp
// can answer: the revocation was stored and the Connect JSON answer,
// unable to marshal its expiresAt, was internal. Nothing is stored.
func TestRevokeSubjectTimesInRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now()
	hour := int64(3600)
	bad := map[string]struct {
		field string
		req   *stsv1.RevokeSubjectRequest
	}{
		"issuedBefore negative nanos":    {"issuedBefore", &stsv1.RevokeSubjectRequest{IssuedBefore: &timestamppb.Timestamp{Seconds: now.Unix(), Nanos: -1}}},
		"issuedBefore past year 9999":    {"issuedBefore", &stsv1.RevokeSubjectRequest{IssuedBefore: &timestamppb.Timestamp{Seconds: 253402300800}}},
		"keep nanos of the other sign":   {"keep", &stsv1.RevokeSubjectRequest{Keep: &durationpb.Duration{Seconds: hour, Nanos: -1}}},
		"keep nanos out of range":        {"keep", &stsv1.RevokeSubjectRequest{Keep: &durationpb.Duration{Seconds: hour, Nanos: 1e9}}},
		"kept past year 9999 (defaults)": {"issuedBefore", &stsv1.RevokeSubjectRequest{IssuedBefore: timestamppb.New(time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC))}},
	}
	for proto, opts := range map[string][]connect.ClientOption{
		"connect-proto": nil, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()}, "connect-json": {connect.WithProtoJSON()},
	} {
		c := stsv1connect.NewRevocationServiceClient(e.srv.Client(), e.srv.URL, opts...)
		for name, tc := range bad {
			if proto == "connect-json" && !strings.HasPrefix(name, "kept") {
				continue // not expressible in JSON; protojson refuses it on both ends
			}
			subject := "repo:acme/" + proto + "/" + strings.ReplaceAll(name, " ", "-")
			tc.req.Subject = subject
			_, err := c.RevokeSubject(as(e.admin), tc.req)
			wantFieldError(t, proto+": RevokeSubject with "+name, err, tc.field)
			if _, err := e.store.GetRevocation(t.Context(), tokens.RevocationIDSubject(subject)); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: RevokeSubject with %s stored a revocation (%v)", proto, name, err)
			}
		}
		// The boundary is accepted: a revocation kept exactly until the
		// greatest Timestamp is stored and answered.
		subject := "repo:acme/" + proto + "/boundary"
		last := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
		res, err := c.RevokeSubject(as(e.admin), &stsv1.RevokeSubjectRequest{Subject: subject, IssuedBefore: timestamppb.New(last.Add(-time.Hour)), Keep: durationpb.New(time.Hour)})
		if err != nil || !res.GetExpiresAt().AsTime().Equal(last) {
			t.Errorf("%s: RevokeSubject kept until %v: %v %v, want accepted", proto, last, res, err)
		} else if r, err := e.store.GetRevocation(t.Context(), tokens.RevocationIDSubject(subject)); err != nil || r.ExpiresAt.Year() != 9999 {
			t.Errorf("%s: the boundary revocation stored %v (%v), want kept until 9999-12-31", proto, r.ExpiresAt, err)
		}
		// A zero keep stays refused.
		subject = "repo:acme/" + proto + "/zero-keep"
		_, err = c.RevokeSubject(as(e.admin), &stsv1.RevokeSubjectRequest{Subject: subject, Keep: &durationpb.Duration{}})
		wantFieldError(t, proto+": RevokeSubject with a zero keep", err, "keep")
		if _, err := e.store.GetRevocation(t.Context(), tokens.RevocationIDSubject(subject)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: RevokeSubject with a zero keep stored a revocation (%v)", proto, err)
		}
	}
}
