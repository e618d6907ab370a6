package pat

import (
	"context"
	"errors"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// ExchangeSource is what the credential creating an exchange token
// derives from, recorded on the token so that the access token it buys
// derives from it too (docs/design.md#lifetimes, docs/security.md A-50).
// The zero value is the operator's (`sts exchange-token create` in direct
// mode): no credential, nothing to end with.
type ExchangeSource struct {
	// CreatorID is the principal whose credential creates the token.
	// ConsumeExchangeToken refuses the token once it is disabled or
	// deleted.
	CreatorID string
	// ExpiresAt is the creating credential's expiry (zero: none). The
	// token expires no later, and what it buys neither
	// (Authenticated.ExpiresAt).
	ExpiresAt time.Time
	// Claims is the JSON of the source claims the bought access token
	// carries, opaque here (storage.ExchangeToken.Claims).
	Claims []byte
}

// CreateExchangeToken mints a one-time exchange token for principalID,
// valid for ttl (0 means MaxExchangeLifetime; more is refused) and never
// past src.ExpiresAt. Only its digest is stored, with src, and the secret
// is returned only after the row and its audit event have committed.
// Errors: [sts.Invalid], [sts.NotFound], [sts.FailedPrecondition]
// (principal disabled), [sts.Unavailable].
func (s *Service) CreateExchangeToken(ctx context.Context, c Caller, principalID string, ttl time.Duration, src ExchangeSource) (storage.ExchangeToken, string, error) {
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
		CreatorID: src.CreatorID, CreatorExpiresAt: src.ExpiresAt, Claims: src.Claims,
	}
	if !src.ExpiresAt.IsZero() && src.ExpiresAt.Before(t.ExpiresAt) {
		t.ExpiresAt = src.ExpiresAt // never past the credential creating it
	}
	// The token and its event commit together (docs/design.md#audit),
	// with the principal held (docs/design.md#owners-held-while-their-rows-are-written).
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		if err := holdOwner(ctx, tx, p.ID); err != nil {
			return err
		}
		if err := tx.CreateExchangeToken(ctx, t); err != nil {
			return storageErr(err, "exchange token")
		}
		if err := tx.AppendAudit(ctx, c.Event(s.now(), t.OrgID, ActionExchangeMint, "principal:"+p.ID, "success", "")); err != nil {
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
// identity it was minted for: RedeemExchangeToken without a check of the
// caller's. A malformed secret is rejected without a lookup; malformed,
// unknown, expired, spent, disabled-principal and disabled- or
// deleted-creator tokens all get [sts.Unauthenticated] "invalid token".
// The returned Scopes are full access: an exchange token is a one-time
// bootstrap code standing for its principal. ExpiresAt is its creator's
// credential's expiry (zero for the operator's), which the access token it
// buys must not outlive, and Claims the source claims that token carries
// (docs/security.md A-50).
func (s *Service) ConsumeExchangeToken(ctx context.Context, secret string) (Authenticated, error) {
	au, _, err := s.RedeemExchangeToken(ctx, secret, nil)
	return au, err
}

// Reasons an exchange token is refused (ExchangeRedemption.Reason).
const (
	ExchangeMalformed         = "malformed"
	ExchangeUnknown           = "unknown" // unknown, expired or already spent: one lookup cannot tell them apart
	ExchangePrincipalDisabled = "principal_disabled"
	ExchangeCreatorDisabled   = "creator_disabled"
	ExchangeCreatorDeleted    = "creator_deleted"
	ExchangeCreatorExpired    = "creator_expired"
	// ExchangeSourceGone: a source the bought token would carry is gone
	// or no longer allows it (a PAT narrowed, docs/security.md A-67);
	// judged by the caller, which knows the token's claims.
	ExchangeSourceGone = "source_gone"
	// ExchangeRevoked: a revocation row ends the token it would buy, as
	// issued when the exchange token was created (`sts revoke subject` of
	// its principal or its creator since, docs/security.md A-73); judged
	// by the caller.
	ExchangeRevoked = "revoked"
	// ExchangeTooLarge: the token it would buy is larger than our
	// verifier accepts (docs/security.md T-220); judged by the caller.
	ExchangeTooLarge = "token_too_large"
)

// ExchangeRedemption is what one redemption found, for its audit event
// (docs/design.md#audit): labels of the token, never its secret.
type ExchangeRedemption struct {
	// Digest is the secret's digest prefix (DigestID), which a replay
	// shares with the redemption that spent the token; empty for a
	// malformed secret.
	Digest string
	// TokenID, OrgID, PrincipalID and CreatorID are the stored token's;
	// empty when no stored token was found.
	TokenID, OrgID, PrincipalID, CreatorID string
	// CreatedAt is when the stored token was created (zero when none was
	// found): what it buys derives from credentials issued by then.
	CreatedAt time.Time
	// Reason is why the token was refused (Exchange*), empty when it was
	// not or when storage failed.
	Reason string
}

// ExchangeCheck is a caller's own judgement of a redemption that passed
// every check of the service, r saying what was found, made before the
// token is spent (the sources of the access token it would buy,
// docs/security.md A-67), and its last step before the spend: whatever
// may fail for a while (signing, storing the issuance's audit event)
// belongs here, so that nothing but the spend follows it. It
// returns nil to go on; a reason (Exchange*) and an error to refuse,
// which spends the token; or an [sts.Unavailable] error when it cannot
// say or cannot go on now, which leaves the token redeemable.
type ExchangeCheck func(ctx context.Context, au Authenticated, r ExchangeRedemption) (reason string, err error)

// RedeemExchangeToken is ConsumeExchangeToken that also says what it
// found, issued or refused (docs/security.md D-18), and runs check, when
// not nil, as the last judgement before the token is spent.
//
// The token is read and judged first, and spent only when the judgement
// is definite: issued, the token is spent in the same statement that
// reads it again, so of concurrent callers exactly one gets it; refused
// (principal or creator disabled or deleted, check refusing), it is spent
// so that it stays refused whatever changes later. When storage, or check,
// cannot answer, the redemption is [sts.Unavailable] and the token stays
// redeemable: a transient failure never burns it (docs/security.md A-70).
func (s *Service) RedeemExchangeToken(ctx context.Context, secret string, check ExchangeCheck) (Authenticated, ExchangeRedemption, error) {
	var r ExchangeRedemption
	if err := PrefixExchangeToken.Parse(secret); err != nil {
		r.Reason = ExchangeMalformed
		return Authenticated{}, r, errInvalidToken
	}
	digest, err := s.digest(secret)
	if err != nil {
		return Authenticated{}, r, err
	}
	r.Digest = DigestID(digest)
	fail := func(err error) (Authenticated, ExchangeRedemption, error) {
		err = s.lookupErr(ctx, err, r.Digest)
		if err == errInvalidToken {
			r.Reason = ExchangeUnknown
		}
		return Authenticated{}, r, err
	}
	t, err := s.store.GetExchangeToken(ctx, digest, s.now())
	if err != nil {
		return fail(err)
	}
	r.TokenID, r.OrgID, r.PrincipalID, r.CreatorID, r.CreatedAt = t.ID, t.OrgID, t.PrincipalID, t.CreatorID, t.CreatedAt
	// refuse spends the token for a definite refusal, so that it stays
	// refused when what refused it changes back (a principal enabled
	// again). Spending it is the refusal's last step: when storage cannot,
	// the redemption is unavailable, and a retry refuses it again.
	refuse := func(reason string, cause error) (Authenticated, ExchangeRedemption, error) {
		if _, err := s.store.ConsumeExchangeToken(ctx, digest, s.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return Authenticated{}, r, sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		r.Reason = reason
		return Authenticated{}, r, cause
	}
	p, err := s.store.GetPrincipal(ctx, t.PrincipalID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return refuse(ExchangeUnknown, errInvalidToken)
	case err != nil:
		return fail(err)
	case p.Disabled || p.OrgID != t.OrgID:
		s.logger().InfoContext(ctx, "exchange token rejected", "exchange_token_id", t.ID, "reason", "principal disabled")
		return refuse(ExchangePrincipalDisabled, errInvalidToken)
	}
	if reason, err := s.creatorStands(ctx, t); err != nil {
		if reason == "" {
			return Authenticated{}, r, err
		}
		return refuse(reason, err)
	}
	org, err := s.store.GetOrganization(ctx, t.OrgID)
	if errors.Is(err, storage.ErrNotFound) {
		return refuse(ExchangeUnknown, errInvalidToken)
	} else if err != nil {
		return fail(err)
	}
	au := Authenticated{
		OrgID: t.OrgID, OrgTier: org.Tier, Principal: p,
		Scopes: []string{ScopeFull}, ExpiresAt: t.CreatorExpiresAt, Claims: t.Claims,
	}
	if check != nil {
		if reason, err := check(ctx, au, r); err != nil {
			if sts.ErrorCode(err) == sts.Unavailable {
				return Authenticated{}, r, err
			}
			return refuse(reason, err)
		}
	}
	// Spent here, in the statement that reads it again: of concurrent
	// redemptions exactly one gets it; the others read it as spent.
	spent, err := s.store.ConsumeExchangeToken(ctx, digest, s.now())
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return Authenticated{}, r, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	if err != nil || spent.ID != t.ID {
		// Read a moment ago, gone now: not an unknown secret.
		s.logger().InfoContext(ctx, "exchange token rejected", "exchange_token_id", t.ID,
			"reason", "spent since it was read (a concurrent redemption, a revocation, or its expiry)")
		r.Reason = ExchangeUnknown
		return Authenticated{}, r, errInvalidToken
	}
	return au, r, nil
}

// creatorStands refuses an exchange token whose creator is disabled
// or deleted, or whose creating credential has expired: what it would buy
// derives from them (docs/security.md A-50); the reason is one of
// Exchange*. The operator's tokens have no creator. The creator's
// organization is not compared: an instance administrator creates tokens
// for any organization's principals.
func (s *Service) creatorStands(ctx context.Context, t storage.ExchangeToken) (string, error) {
	reason := ""
	if !t.CreatorExpiresAt.IsZero() && !s.now().Before(t.CreatorExpiresAt) {
		reason = ExchangeCreatorExpired
	} else if t.CreatorID != "" {
		cr, err := s.store.GetPrincipal(ctx, t.CreatorID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			reason = ExchangeCreatorDeleted
		case err != nil:
			return "", s.lookupErr(ctx, err, DigestID(t.Digest))
		case cr.Disabled:
			reason = ExchangeCreatorDisabled
		}
	}
	if reason != "" {
		s.logger().InfoContext(ctx, "exchange token rejected", "exchange_token_id", t.ID, "creator", t.CreatorID, "reason", reason)
		return reason, errInvalidToken
	}
	return "", nil
}
