package hosttoken

import (
	"context"
	"errors"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Who may act on a token: its subject, the runner named in runnerId, and
// administrators of its organization. Nobody outside the organization,
// and every refusal on an existing token reads as not_found, so IDs of
// other organizations (or other users' tokens) cannot be probed.

func notFound(id string) error {
	return sts.Errorf(sts.NotFound, "host authentication token %s not found", id)
}

func mayAct(c Caller, r storage.HostToken) bool {
	if c.OrgID == "" || c.OrgID != r.OrgID {
		return false
	}
	return c.Admin || (c.PrincipalID != "" && (c.PrincipalID == r.SubjectID || c.PrincipalID == r.RunnerID))
}

// load returns the row if c may act on it, else not_found.
func (s *Service) load(ctx context.Context, c Caller, id string) (storage.HostToken, error) {
	if !storage.IsUUID(id) {
		return storage.HostToken{}, invalid("id must be a UUID")
	}
	r, err := s.Store.GetHostToken(ctx, storage.CanonicalID(id))
	if errors.Is(err, storage.ErrNotFound) {
		return r, notFound(id)
	}
	if err != nil {
		return r, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	if !mayAct(c, r) {
		return storage.HostToken{}, notFound(id)
	}
	return r, nil
}

// principalIn returns a principal of org, or not_found for one that does
// not exist or belongs to another organization.
func (s *Service) principalIn(ctx context.Context, org, id, field string) (storage.Principal, error) {
	p, err := s.Store.GetPrincipal(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && p.OrgID != org) {
		return storage.Principal{}, sts.Errorf(sts.NotFound, "%s %s not found", field, id)
	}
	if err != nil {
		return storage.Principal{}, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return p, nil
}

// subjectKind looks up a subject's kind for the read model; "" if unknown.
func (s *Service) subjectKind(ctx context.Context, id string, cache map[string]storage.PrincipalKind) storage.PrincipalKind {
	if k, ok := cache[id]; ok {
		return k
	}
	var k storage.PrincipalKind
	if p, err := s.Store.GetPrincipal(ctx, id); err == nil {
		k = p.Kind
	}
	if cache != nil {
		cache[id] = k
	}
	return k
}

// mayCreate decides who may store a token for runner and subject: the
// subject itself or an organization admin always; the runner too, unless
// the subject is a user, so a runner cannot plant tokens in the name of
// the users of its organization (a runner acting for a user would then
// push that user's work to an account of the runner's choosing).
func mayCreate(c Caller, runner, subj storage.Principal) error {
	switch {
	case c.Admin || c.PrincipalID == subj.ID:
		return nil
	case subj.Kind == storage.PrincipalUser:
		return sts.Errorf(sts.PermissionDenied, "only that user or an organization admin may store a token whose subject is a user")
	case c.PrincipalID == runner.ID:
		return nil
	}
	return sts.Errorf(sts.PermissionDenied, "only the subject, the runner or an organization admin may store this token")
}
