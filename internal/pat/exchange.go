package pat

import (
	"context"
	"errors"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// CreateExchangeToken mints a one-time exchange token for principalID,
// valid for ttl (0 means MaxExchangeLifetime; more is refused). Only its
// digest is stored, and the secret is returned only after the row and its
// audit event have committed. Errors: [sts.Invalid], [sts.NotFound],
// [sts.FailedPrecondition] (principal disabled), [sts.Unavailable].
func (s *Service) CreateExchangeToken(ctx context.Context, c Caller, principalID string, ttl time.Duration) (storage.ExchangeToken, string, error) {
	if ttl == 0 {
		ttl = MaxExchangeLifetime
	}
	if ttl < time.Second || ttl > MaxExchangeLifetime {
		return storage.ExchangeToken{}, "", sts.Errorf(sts.Invalid, "exchange token lifetime must be between 1s and %s", MaxExchangeLifetime)
	}
	p, err := s.activeOwner(ctx, principalID)
	if err != nil {
		return storage.ExchangeToken{}, "", err
	}
	secret := PrefixExchangeToken.Generate()
	digest, err := s.digest(secret)
	if err != nil {
		return storage.ExchangeToken{}, "", err
	}
	now := s.now()
	t := storage.ExchangeToken{
		ID: storage.NewID(), OrgID: p.OrgID, PrincipalID: p.ID,
		Digest: digest, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	// The token and its event commit together (docs/design.md#audit).
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreateExchangeToken(ctx, t); err != nil {
			return storageErr(err, "exchange token")
		}
		if err := tx.AppendAudit(ctx, s.event(c, t.OrgID, ActionExchangeMint, "principal:"+p.ID)); err != nil {
			return sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*sts.Error](err); !ok {
			err = sts.Wrap(sts.Unavailable, err, "storage unavailable") // the commit failed
		}
		return storage.ExchangeToken{}, "", err
	}
	return t, secret, nil
}

// ConsumeExchangeToken spends a one-time exchange token and returns the
// identity it was minted for. The row is removed in the same statement
// that reads it, so of concurrent callers exactly one succeeds. A
// malformed secret is rejected without a lookup; malformed, unknown,
// expired, spent and disabled-principal tokens all get [sts.Unauthenticated]
// "invalid token". The returned Scopes are full access and ExpiresAt is
// zero: an exchange token is a one-time bootstrap code standing for its
// principal, so the access token it buys gets the normal lifetime.
func (s *Service) ConsumeExchangeToken(ctx context.Context, secret string) (Authenticated, error) {
	if err := PrefixExchangeToken.Parse(secret); err != nil {
		return Authenticated{}, errInvalidToken
	}
	digest, err := s.digest(secret)
	if err != nil {
		return Authenticated{}, err
	}
	t, err := s.store.ConsumeExchangeToken(ctx, digest, s.now())
	if err != nil {
		return Authenticated{}, s.lookupErr(ctx, err, DigestID(digest))
	}
	p, err := s.store.GetPrincipal(ctx, t.PrincipalID)
	if err != nil {
		return Authenticated{}, s.lookupErr(ctx, err, DigestID(digest))
	}
	if p.Disabled || p.OrgID != t.OrgID {
		s.logger().InfoContext(ctx, "exchange token rejected", "exchange_token_id", t.ID, "reason", "principal disabled")
		return Authenticated{}, errInvalidToken
	}
	org, err := s.store.GetOrganization(ctx, t.OrgID)
	if err != nil {
		return Authenticated{}, s.lookupErr(ctx, err, DigestID(digest))
	}
	return Authenticated{
		OrgID: t.OrgID, OrgTier: org.Tier, Principal: p,
		Scopes: []string{ScopeFull},
	}, nil
}
