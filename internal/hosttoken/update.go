package hosttoken

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// UpdateInput changes a token; nil fields stay as they are.
type UpdateInput struct {
	Token        *string
	RefreshToken *string // "" removes the refresh token
	ExpiresAt    *time.Time
	Scopes       []string // replaces the scopes when non-empty
}

// detail names the fields in sets for the audit trail, never a value
// ("changed token,expires_at"; docs/design.md#audit).
func (in UpdateInput) detail() string {
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{{"token", in.Token != nil}, {"refresh_token", in.RefreshToken != nil}, {"expires_at", in.ExpiresAt != nil}, {"scopes", len(in.Scopes) > 0}} {
		if x.set {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return ""
	}
	return "changed " + strings.Join(f, ",")
}

// Update changes a token's values, expiry or scopes. New values are sealed
// under a fresh data key and clear the failure shown on the token: a new
// refresh token discards an in-flight refresh; a new value or expiry alone
// leaves an in-flight refresh to finish (it stores its rotated refresh
// token, and its value only if none was set meanwhile). No update ends
// the wait before the next refresh (a lease, a failure's backoff, the pace
// after a success; docs/security.md A-58). Codes: Invalid, NotFound,
// Unavailable, Internal (a stored refresh token that does not decrypt).
func (s *Service) Update(ctx context.Context, c Caller, id string, in UpdateInput) (Token, error) {
	if in.Token != nil {
		if err := checkValue("token", *in.Token, true); err != nil {
			return Token{}, err
		}
	}
	if in.RefreshToken != nil {
		if err := checkValue("refreshToken", *in.RefreshToken, false); err != nil {
			return Token{}, err
		}
	}
	if err := checkScopes(in.Scopes); err != nil {
		return Token{}, err
	}
	r, err := s.load(ctx, c, id)
	if err != nil {
		return Token{}, err
	}
	if in.RefreshToken != nil && *in.RefreshToken != "" && r.Source == storage.HostTokenSourcePAT {
		return Token{}, invalid("refreshToken: a PAT-source token has no refresh token")
	}
	// renew is nil when c may store this token anew (mayCreate): only
	// then may it extend the token's expiry (docs/security.md T-176).
	var renew error
	if in.Token != nil || in.RefreshToken != nil || in.ExpiresAt != nil {
		subj, err := s.principalIn(ctx, r.OrgID, r.SubjectID, "subject")
		if err != nil {
			return Token{}, err
		}
		renew = mayCreate(c, storage.Principal{ID: r.RunnerID}, subj)
	}
	if (in.Token != nil || in.RefreshToken != nil) && renew != nil {
		// A new value is a new secret stored in the subject's name: the
		// rule of creating one (mayCreate), so a runner cannot replace a
		// user's token with one of its choosing (docs/security.md A-06).
		return Token{}, renew
	}
	var out storage.HostToken
	err = s.changeTx(ctx, c, "host_token.update", r.ID, in.detail(), func(tx storage.Tx) error {
		return tx.UpdateHostToken(ctx, r.ID, func(old storage.HostToken) (storage.HostToken, error) {
			if !mayAct(c, old) {
				return old, notFound(id) // defense in depth: the row changed hands
			}
			if in.Token != nil || in.RefreshToken != nil {
				tok, refresh, err := s.openValues(ctx, old)
				if err != nil {
					return old, err
				}
				if in.Token != nil {
					tok = *in.Token
				}
				// A refresh token other than the one held: the backoff or
				// pace the one held earned is not the new one's.
				fresh := false
				if in.RefreshToken != nil {
					fresh = *in.RefreshToken != "" && !same(refresh, *in.RefreshToken)
					refresh = *in.RefreshToken
				}
				if err := s.sealValues(&old, tok, refresh); err != nil {
					return old, err
				}
				old.RefreshError, old.RefreshFailures = "", 0
				// A supplied refresh token ends a refresh in flight: its
				// result is discarded unless the row still holds the
				// refresh token it spent (supplied again). A new value
				// alone keeps the lease, as a new expiry does: the
				// refresher stores the refresh token it rotated to beside
				// this value, and no other replica spends the old one
				// meanwhile (docs/security.md A-49). The lease's end stays
				// either way, as a backoff's or a pace's does: no update
				// hastens the next call to the token endpoint with the
				// refresh token it has. A new refresh token starts
				// afresh: the backoff a dead one earned would otherwise
				// let the value it came with expire unrefreshed, and the
				// owner's re-authorization is its own first call.
				if in.RefreshToken != nil {
					old.RefreshLeaseID = ""
				}
				if fresh {
					old.RefreshLeaseUntil = time.Time{}
				}
			}
			if in.ExpiresAt != nil {
				exp := storage.Now(*in.ExpiresAt)
				// A later expiry (or none) hands the value out for
				// longer than the one who stored it chose, or revives a
				// token past its expiry: only who may store it anew
				// may; anyone who may act on it may shorten it
				// (docs/security.md T-176).
				if renew != nil && extends(old.ExpiresAt, exp) {
					return old, sts.Errorf(sts.PermissionDenied,
						"only the subject or an organization admin may extend the expiry of this token")
				}
				old.ExpiresAt = exp
				// A new expiry ends no refresh in flight: freeing its lease
				// would discard what the token endpoint returns, the
				// rotated refresh token with it, or let another replica
				// spend the same refresh token (docs/security.md A-49);
				// the refresh's result, with its own expiry, then replaces
				// the value this expiry was for. Nor does it end a
				// failure's backoff or the pace after a success: an
				// expiry set to now would otherwise call the token
				// endpoint at every poll.
			}
			if len(in.Scopes) > 0 {
				old.Scopes = in.Scopes
			}
			old.UpdatedAt = storage.Now(s.now())
			out = old
			return old, nil
		})
	})
	if err := updateErr(err, id); err != nil {
		return Token{}, err
	}
	return toToken(out, s.subjectKind(ctx, out.SubjectID, nil)), nil
}

// extends reports whether expiry next is later than cur (no expiry is
// the latest).
func extends(cur, next time.Time) bool {
	switch {
	case cur.IsZero():
		return false
	case next.IsZero():
		return true
	}
	return next.After(cur)
}

// ListInput selects tokens; empty filters match all the caller may see.
type ListInput struct {
	RunnerID  string
	SubjectID string
	UserID    string // deprecated alias of SubjectID
	PageToken string
	PageSize  int
}

// List returns the tokens of the caller's organization that the caller may
// act on (all of them for admins), by ID, and the next page token ("" at
// the end). Codes: Invalid, Unavailable.
func (s *Service) List(ctx context.Context, c Caller, in ListInput) ([]Token, string, error) {
	if err := checkUUID("filter.runnerId", in.RunnerID, false); err != nil {
		return nil, "", err
	}
	sub, err := resolveSubject(Subject{ID: in.SubjectID}, in.UserID, "filter.subjectId", "filter.userId")
	if err != nil {
		return nil, "", err
	}
	// 0 or less is the default, as for every gitpod.v1 List RPC
	// (docs/api.md, "gitpod.v1 wire contract").
	size := in.PageSize
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	after := ""
	if in.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.PageToken)
		if err != nil || !storage.IsUUID(string(b)) {
			return nil, "", invalid("pagination.token is invalid")
		}
		after = string(b)
	}
	if c.OrgID == "" {
		return nil, "", nil
	}
	f := storage.HostTokenFilter{OrgID: c.OrgID, RunnerID: storage.CanonicalID(in.RunnerID), SubjectID: sub.ID, AfterID: after, Limit: size + 1}
	if !c.Admin {
		f.Principal = c.PrincipalID
	}
	rows, err := s.Store.ListHostTokens(ctx, f)
	if err != nil {
		return nil, "", sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	next := ""
	if len(rows) > size {
		rows = rows[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(rows[size-1].ID))
	}
	kinds := map[string]storage.PrincipalKind{}
	out := make([]Token, len(rows))
	for i, r := range rows {
		out[i] = toToken(r, s.subjectKind(ctx, r.SubjectID, kinds))
	}
	return out, next, nil
}

// updateErr translates the error of a host-token update: a missing row is
// not_found (as one the caller may not see), a refusal from the updater
// stays as it is, anything else is storage being unavailable.
func updateErr(err error, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return notFound(id)
	case !errors.As(err, new(*sts.Error)):
		return sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return err
}
