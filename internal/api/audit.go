package api

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/audit"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// AuditService implements sts.v1.AuditService over [audit.List], the
// reader `sts audit list` uses too. Every method needs sts:admin; an
// organization administrator reads its own organization's events only, an
// instance administrator any (docs/authorization.md).
type AuditService struct{ h *Handler }

var _ stsv1connect.AuditServiceHandler = (*AuditService)(nil)

var errNoAudit = sts.Errorf(sts.Unavailable, "audit service unavailable")

// ListAuditEvents returns one page of matching events, newest first.
// Errors: [sts.Invalid] (naming the field), [sts.Unavailable].
func (s *AuditService) ListAuditEvents(ctx context.Context, req *stsv1.ListAuditEventsRequest) (*stsv1.ListAuditEventsResponse, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, err
	}
	org, err := s.h.listOrg(ctx, id, req.GetOrganizationId())
	if err != nil {
		return nil, err
	}
	if s.h.Audit == nil {
		return nil, errNoAudit
	}
	q := audit.Query{
		OrgID: org, Actor: req.GetActor(), Action: req.GetAction(), Target: req.GetTarget(),
		Outcome: req.GetOutcome(), RequestID: req.GetRequestId(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	}
	if q.Since, err = timeField("since", req.GetSince()); err != nil {
		return nil, err
	}
	if q.Until, err = timeField("until", req.GetUntil()); err != nil {
		return nil, err
	}
	page, err := audit.List(ctx, s.h.Audit, q)
	if err != nil {
		if qe, ok := errors.AsType[*audit.QueryError](err); ok {
			return nil, sts.Wrap(sts.Invalid, err, qe.Error())
		}
		return nil, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	out := &stsv1.ListAuditEventsResponse{Events: make([]*stsv1.AuditEvent, 0, len(page.Events)), NextPageToken: page.NextPageToken}
	for _, e := range page.Events {
		out.Events = append(out.Events, auditEventToProto(e))
	}
	return out, nil
}

// timeField converts an optional timestamp; unset is the zero time.
func timeField(name string, t *timestamppb.Timestamp) (time.Time, error) {
	if t == nil {
		return time.Time{}, nil
	}
	if t.CheckValid() != nil {
		return time.Time{}, sts.Errorf(sts.Invalid, "%s: not a valid timestamp", name)
	}
	return t.AsTime(), nil
}

func auditEventToProto(e storage.AuditEvent) *stsv1.AuditEvent {
	return &stsv1.AuditEvent{
		Id: e.ID, Time: ts(e.Time), OrganizationId: e.OrgID, Actor: e.Actor, Action: e.Action, Target: e.Target,
		RequestId: e.RequestID, Outcome: e.Outcome, Detail: e.Detail,
		ClientIp: e.ClientIP, UserAgent: e.UserAgent,
	}
}
