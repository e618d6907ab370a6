package hosttoken

import (
	"context"
	"errors"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// CreateInput is a new token (gitpod.v1.RunnerConfigurationService CreateHostAuthenticationToken).
type CreateInput struct {
	RunnerID      string
	Subject       Subject
	UserID        string // deprecated; a user subject
	Host          string
	Token         string
	RefreshToken  string
	Source        storage.HostTokenSource
	ExpiresAt     time.Time // zero: does not expire
	IntegrationID string
	Scopes        []string
}

func (in *CreateInput) validate() error {
	if err := checkValue("token", in.Token, true); err != nil {
		return err
	}
	if err := checkValue("refreshToken", in.RefreshToken, false); err != nil {
		return err
	}
	if err := checkHost(in.Host); err != nil {
		return err
	}
	if err := checkUUID("runnerId", in.RunnerID, true); err != nil {
		return err
	}
	if err := checkUUID("integrationId", in.IntegrationID, false); err != nil {
		return err
	}
	if err := checkScopes(in.Scopes); err != nil {
		return err
	}
	if err := checkSource(in.Source); err != nil {
		return err
	}
	if in.RefreshToken != "" && in.Source == storage.HostTokenSourcePAT {
		return invalid("refreshToken: a PAT-source token has no refresh token")
	}
	sub, err := resolveSubject(in.Subject, in.UserID, "subject.id", "userId")
	in.Subject, in.RunnerID, in.IntegrationID = sub, storage.CanonicalID(in.RunnerID), storage.CanonicalID(in.IntegrationID)
	return err
}

// Create validates and stores a token. The caller must be the subject, the
// runner (unless the subject is a user: only that user or an organization
// admin may store a user's token), or an organization admin; runner and
// subject must be principals of the caller's organization. With no subject, the caller is the subject
// (unless the caller is the runner). Codes: Invalid (naming the field),
// NotFound (runner or subject), FailedPrecondition (runner or subject
// disabled), PermissionDenied, Unavailable.
func (s *Service) Create(ctx context.Context, c Caller, in CreateInput) (Token, error) {
	if err := in.validate(); err != nil {
		return Token{}, err
	}
	if in.Subject.ID == "" {
		if c.PrincipalID == in.RunnerID || c.PrincipalID == "" {
			return Token{}, invalid("subject.id is required")
		}
		in.Subject = Subject{ID: c.PrincipalID, Kind: c.Kind}
	}
	runner, err := s.principalIn(ctx, c.OrgID, in.RunnerID, "runner")
	if err != nil {
		return Token{}, err
	}
	if runner.Kind != storage.PrincipalRunner {
		return Token{}, invalid("runnerId must name a runner principal")
	}
	subj, err := s.principalIn(ctx, c.OrgID, in.Subject.ID, "subject")
	if err != nil {
		return Token{}, err
	}
	if in.Subject.Kind != "" && in.Subject.Kind != subj.Kind {
		return Token{}, invalid("subject.principal does not match the subject's kind")
	}
	if err := mayCreate(c, runner, subj); err != nil {
		return Token{}, err
	}
	now := storage.Now(s.now())
	r := storage.HostToken{
		ID: storage.NewID(), OrgID: c.OrgID, RunnerID: runner.ID, SubjectID: subj.ID, Host: in.Host,
		IntegrationID: in.IntegrationID, Scopes: in.Scopes, Source: in.Source,
		ExpiresAt: storage.Now(in.ExpiresAt), CreatedAt: now, UpdatedAt: now,
	}
	if in.ExpiresAt.IsZero() {
		r.ExpiresAt = time.Time{}
	}
	if err := s.sealValues(&r, in.Token, in.RefreshToken); err != nil {
		return Token{}, err
	}
	// The row and its audit event commit together (docs/design.md#audit):
	// an acknowledged SCM token always has its event.
	err = s.Store.WithTx(ctx, func(tx storage.Tx) error {
		// Runner and subject are held in the transaction that stores
		// the token: a deletion disables the principal before it sweeps
		// its host tokens, so either this token commits first and the
		// sweep deletes it, or the principal reads as disabled or gone
		// here and nothing is stored for it (docs/design.md#owners-held-while-their-rows-are-written,
		// docs/security.md T-162, A-31).
		if err := holdActive(ctx, tx, c.OrgID, runner.ID, "runner", subj.ID, "subject"); err != nil {
			return err
		}
		if err := tx.CreateHostToken(ctx, r); err != nil {
			return err
		}
		if s.Audit == nil {
			return nil
		}
		return tx.AppendAudit(ctx, c.request(storage.AuditEvent{ID: storage.NewID(), Time: now, OrgID: c.OrgID, Actor: c.actor(),
			Action: "host_token.create", Target: "host_token:" + r.ID, Outcome: "success"}))
	})
	if errors.As(err, new(*sts.Error)) {
		return Token{}, err
	}
	if err != nil {
		return Token{}, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return toToken(r, subj.Kind), nil
}

// holdActive holds principals a and b (fields fa, fb) with
// Tx.LockPrincipal, in ascending id order and once when they are the same
// (two creates that name the same two principals the other way round
// would otherwise each wait for the other), and refuses one that is gone,
// of another organization (not_found) or disabled (failed_precondition).
func holdActive(ctx context.Context, tx storage.Tx, org, a, fa, b, fb string) error {
	if b < a {
		a, fa, b, fb = b, fb, a, fa
	}
	if err := activeIn(ctx, tx, org, a, fa); err != nil || a == b {
		return err
	}
	return activeIn(ctx, tx, org, b, fb)
}

// activeIn holds principal id in tx (Tx.LockPrincipal) and refuses it when
// it is gone, of another organization (not_found) or disabled
// (failed_precondition).
func activeIn(ctx context.Context, tx storage.Tx, org, id, field string) error {
	p, err := tx.LockPrincipal(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound) || err == nil && p.OrgID != org:
		return sts.Errorf(sts.NotFound, "%s %s not found", field, id)
	case err != nil:
		return err
	case p.Disabled:
		return sts.Errorf(sts.FailedPrecondition, "%s %s is disabled", field, id)
	}
	return nil
}

// Get returns a token's metadata. Codes: Invalid, NotFound, Unavailable.
func (s *Service) Get(ctx context.Context, c Caller, id string) (Token, error) {
	r, err := s.load(ctx, c, id)
	if err != nil {
		return Token{}, err
	}
	return toToken(r, s.subjectKind(ctx, r.SubjectID, nil)), nil
}

// Delete deletes a token. Codes: Invalid, NotFound, Unavailable.
func (s *Service) Delete(ctx context.Context, c Caller, id string) error {
	r, err := s.load(ctx, c, id)
	if err != nil {
		return err
	}
	err = s.changeTx(ctx, c, ActionDelete, r.ID, "", func(tx storage.Tx) error { return tx.DeleteHostToken(ctx, r.ID) })
	return updateErr(err, id)
}
