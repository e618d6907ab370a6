package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// ActionSubjectRevoke is the audit action of RevokeSubject.
const ActionSubjectRevoke = "subject.revoke"

// maxRevocationKeep bounds how long a subject revocation is kept.
const maxRevocationKeep = 366 * 24 * time.Hour

// RevocationService implements sts.v1.RevocationService: instance
// administrators only, since a subject belongs to no single organization.
type RevocationService struct{ h *Handler }

var _ stsv1connect.RevocationServiceHandler = (*RevocationService)(nil)

// SubjectRevoker is what revoking a subject writes: the "sub:" revocation
// of its access tokens and the end of its refresh-token families (a
// refresh token would otherwise mint new access tokens after the cut-off).
type SubjectRevoker interface {
	storage.RevocationStore
	storage.RefreshTokenStore
}

// RevokeSubject revokes every token of subject issued at or before
// before, kept for keep; the CLI uses it too. It returns how many refresh
// tokens it ended. Errors: [sts.Invalid], [sts.Unavailable].
func RevokeSubject(ctx context.Context, store SubjectRevoker, subject string, before time.Time, keep time.Duration, now time.Time, reason string) (int64, error) {
	if strings.TrimSpace(subject) == "" || len(subject) > 1024 {
		return 0, sts.Errorf(sts.Invalid, "subject required (at most 1024 bytes)")
	}
	if keep <= 0 || keep > maxRevocationKeep {
		return 0, sts.Errorf(sts.Invalid, "keep must be positive and at most 366 days")
	}
	// The revocation's cut-off and its end (before plus keep, the
	// answer's expiresAt) must be Timestamps: past 9999-12-31 none holds
	// them, and a revocation stored first failed as its answer was
	// written (docs/api.md).
	if err := timestamp("issuedBefore", timestamppb.New(before)); err != nil {
		return 0, err
	}
	if timestamppb.New(before.Add(keep)).CheckValid() != nil {
		return 0, sts.Errorf(sts.Invalid, "issuedBefore plus keep must be at most 9999-12-31T23:59:59.999999999Z")
	}
	// The row first, then the families' revoked flags: a refresh that
	// begins after the row is refused, so the UPDATE settles; a family
	// begun meanwhile that the UPDATE misses reads the row once stored;
	// and a revocation that fails part-way has still ended the access
	// tokens and every refresh while the row is kept (docs/security.md
	// T-160).
	err := store.PutRevocation(ctx, storage.Revocation{
		ID: tokens.RevocationIDSubject(subject), IssuedBefore: storage.Now(before), Reason: reason,
		CreatedAt: storage.Now(now), ExpiresAt: storage.Now(before.Add(keep)),
	})
	if err != nil {
		return 0, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	n, err := store.RevokeRefreshSubject(ctx, subject, before)
	if err != nil {
		return n, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return n, nil
}

// SubjectOrg is the organization a subject revocation's audit event
// belongs to (docs/security.md D-19): the principal's, when subject names
// one, so its organization's administrators read it; otherwise (a pool's
// mapped subject, which pools of any organization may produce, or a
// principal that cannot be read) "", instance-level.
func SubjectOrg(ctx context.Context, store storage.PrincipalStore, subject string) string {
	if !storage.IsUUID(subject) {
		return ""
	}
	p, err := store.GetPrincipal(ctx, subject)
	if err != nil {
		return ""
	}
	return p.OrgID
}

// SubjectNamed is the subject a revocation of subject is for. A pool's
// subjects are strings compared as they are, so a subject is revoked as
// sent, with one exception: a subject in UUID form with upper-case digits
// that names no principal, while its lower-case form names one, is that
// principal. sts writes a principal's ID in lower case in its tokens' sub,
// so revoking the upper-case form answered OK and revoked nothing; an
// administrator who pasted the ID in upper case means the principal
// (storage.CanonicalID, docs/security.md T-210). A storage failure is an
// error rather than a guess.
func SubjectNamed(ctx context.Context, store storage.PrincipalStore, subject string) (string, error) {
	low := storage.CanonicalID(subject)
	if low == subject {
		return subject, nil
	}
	for _, s := range [...]string{subject, low} {
		switch _, err := store.GetPrincipal(ctx, s); {
		case err == nil:
			return s, nil
		case !errors.Is(err, storage.ErrNotFound):
			return "", lookupErr(err, "principal")
		}
	}
	return subject, nil
}

// RevokeSubject revokes a subject's tokens.
func (s *RevocationService) RevokeSubject(ctx context.Context, req *stsv1.RevokeSubjectRequest) (*stsv1.RevokeSubjectResponse, error) {
	id, err := s.h.requireInstanceAdmin(ctx)
	if err != nil {
		return nil, err
	}
	store, ok := s.h.Store.(SubjectRevoker)
	if !ok {
		return nil, sts.Errorf(sts.Unavailable, "revocations unavailable")
	}
	now := s.h.now()
	// Both must be values the proto3 JSON mapping carries, as protojson
	// requires of a JSON request (docs/api.md): AsTime and AsDuration
	// would normalize any other into some other revocation. (Their
	// range, and that of issuedBefore plus keep, RevokeSubject checks.)
	before := now
	if req.GetIssuedBefore() != nil {
		if err := timestamp("issuedBefore", req.GetIssuedBefore()); err != nil {
			return nil, err
		}
		before = req.GetIssuedBefore().AsTime()
	}
	keep := tokens.RevocationKeep(s.h.RevocationKeep)
	if req.GetKeep() != nil {
		if err := validDuration("keep", req.GetKeep()); err != nil {
			return nil, err
		}
		keep = req.GetKeep().AsDuration()
	}
	subject, err := SubjectNamed(ctx, s.h.Store, req.GetSubject())
	if err != nil {
		return nil, err
	}
	n, err := RevokeSubject(ctx, store, subject, before, keep, now, "api revoke subject")
	if err != nil {
		return nil, err
	}
	// The revocation is committed; a lost event is logged rather than undone.
	org := SubjectOrg(ctx, s.h.Store, subject)
	if err := auditAdmin(ctx, s.h.adminStore(), id.caller(), org, ActionSubjectRevoke, "subject:"+subject, now); err != nil {
		s.h.logger().ErrorContext(ctx, "audit event not stored", "action", ActionSubjectRevoke, "err", err)
	}
	return &stsv1.RevokeSubjectResponse{IssuedBefore: ts(before), ExpiresAt: ts(before.Add(keep)), RefreshTokensRevoked: n}, nil
}
