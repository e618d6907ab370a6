package revoke

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Audit actions of the revocations RFC 7009 makes, one event each
// (docs/design.md#audit). A request that revokes nothing (unknown,
// invalid or another client's token) leaves no event.
const (
	ActionTokenRevoke         = "token.revoke"          // target "jti:<jti>"
	ActionRefreshFamilyRevoke = "refresh_family.revoke" // target "refresh_family:<id>"
	ActionClientSecretRevoke  = "client.secret_revoke"  // target "client:<id>"
)

// ActorHolder is the audit actor of a revocation by a token's holder,
// without client credentials (revokeAsHolder).
const ActorHolder = "token_holder"

// revokeToken revokes token for client; who is the request. It returns
// nil for tokens that are unknown, invalid or another client's (nothing
// revoked, nothing revealed), an error wrapping errUnavailable when a
// write failed.
func (h *Handler) revokeToken(ctx context.Context, who audit.Caller, client *storage.Client, token string) error {
	switch {
	case strings.HasPrefix(token, string(secret.PrefixRefreshToken)):
		return h.revokeRefresh(ctx, who, client, token)
	case strings.HasPrefix(token, string(secret.PrefixClientSecret)):
		return h.revokeOwnSecret(ctx, who, client, token)
	case strings.HasPrefix(token, string(secret.PrefixPAT)), strings.HasPrefix(token, string(secret.PrefixExchangeToken)):
		// Not a client's token: RFC 7009 §2.2.1 lets us say so, based on
		// the prefix alone (no lookup, nothing revealed).
		return oauth2.NewError(oauth2.ErrorUnsupportedTokenType, "revoke personal access tokens through their owner")
	case strings.Count(token, ".") == 2:
		return h.revokeAccess(ctx, who, client, token)
	}
	return nil
}

// revokeAccess stores "jti:<jti>" until the token's exp (plus leeway), so
// every verifier sees it at once (tokens.StoreRevocations). A client
// revokes the tokens issued to it, and any token not issued to a client
// (whose holder may revoke it, see revokeAsHolder).
func (h *Handler) revokeAccess(ctx context.Context, who audit.Caller, client *storage.Client, raw string) error {
	c, err := h.verify(ctx, raw)
	if err != nil {
		return nil // invalid or expired (docs/security.md T-63)
	}
	if c.ClientID != client.ID {
		switch clientless, err := h.clientless(ctx, c); {
		case err != nil:
			return unavailable(err)
		case !clientless:
			return nil // another client's (docs/security.md T-63)
		}
	}
	return h.putRevocation(ctx, who, c, "revoked by client "+client.ID)
}

// revokeAsHolder revokes an access token presented without client
// credentials: RFC 7009 lets the holder revoke, and for a token not issued
// to any client (gitpod.v1 ExchangeToken, a PAT exchange) holding it is
// the only proof there is. Anything else needs the client's credentials
// (401), as before.
func (h *Handler) revokeAsHolder(ctx context.Context, who audit.Caller, raw string) error {
	if strings.HasPrefix(raw, string(secret.PrefixPAT)) || strings.HasPrefix(raw, string(secret.PrefixExchangeToken)) {
		return oauth2.NewError(oauth2.ErrorUnsupportedTokenType, "revoke personal access tokens through their owner")
	}
	if strings.Count(raw, ".") != 2 {
		return clientRequired()
	}
	c, err := h.verify(ctx, raw)
	if err != nil {
		// Signature work that proved nothing: charged to the address, as
		// a failed client authentication is (docs/security.md T-256). A
		// client's own request about an invalid token is answered 200
		// and never charged (RFC 7009 §2.2); this one is refused, and
		// its sender holds nothing of ours. Not when verification could
		// not be made: that is no failure of the caller's.
		if !isStatus(err, http.StatusServiceUnavailable) && sts.ErrorCode(err) != sts.Unavailable {
			if lerr := h.failed(who.ClientIP); lerr != nil {
				return lerr
			}
		}
		return clientRequired()
	}
	switch clientless, err := h.clientless(ctx, c); {
	case err != nil:
		return unavailable(err)
	case !clientless:
		return clientRequired()
	}
	return h.putRevocation(ctx, who, c, "revoked by its holder")
}

// verify checks one of our access tokens: signature, issuer, type and
// times, revoked ones and suspended ones included. A revoked token may be
// revoked again, and reads cannot block a write. A token whose principal,
// client, pool or provider is disabled is only suspended: re-enabling the
// source lets it work again (docs/design.md#lifetimes), so a revocation
// answered 200 meanwhile must be stored, or it would come back
// (docs/security.md A-41, RFC 7009 §2.2). Who may revoke is judged by the
// callers (revokeAccess, revokeAsHolder), never by the source's state.
func (h *Handler) verify(ctx context.Context, raw string) (*tokens.AccessClaims, error) {
	v := *h.Tokens
	v.Revocations, v.Sources = nil, nil
	return v.VerifyAccessTokenAnyAudience(ctx, raw)
}

// clientless reports whether c was not issued to a registered client: no
// client_id, or one naming no client (gitpod.v1's "sts-api", a pool's
// provider for an anonymous exchange, a client since deleted).
func (h *Handler) clientless(ctx context.Context, c *tokens.AccessClaims) (bool, error) {
	if c.ClientID == "" {
		return true, nil
	}
	_, err := h.Store.GetClient(ctx, c.ClientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}

func (h *Handler) putRevocation(ctx context.Context, who audit.Caller, c *tokens.AccessClaims, reason string) error {
	leeway := h.Tokens.Leeway
	if leeway == 0 {
		leeway = tokens.DefaultLeeway
	}
	now := storage.Now(h.now())
	id, until := tokens.RevocationIDJTI(c.ID), storage.Now(c.Expiry.Time().Add(leeway))
	switch done, err := h.revokedUntil(ctx, id, until); {
	case err != nil:
		return unavailable(err)
	case done:
		return nil
	}
	err := h.Store.PutRevocation(ctx, storage.Revocation{ID: id, Reason: reason, CreatedAt: now, ExpiresAt: until})
	if err != nil {
		return unavailable(err)
	}
	h.logger().InfoContext(ctx, "access token revoked", "jti", c.ID, "reason", reason)
	h.audit(ctx, who.Event(now, c.OrgID, ActionTokenRevoke, "jti:"+c.ID, outcomeRevoked, reason))
	return nil
}

// revokedUntil reports whether revocation row id already stands until
// at least until: the token is revoked, and revoking it again revokes
// nothing, so it writes no row and no event. The holder of a client-less
// token and a public client revoke without a secret and unlimited; each
// token then costs storage one row and the audit trail one event, not
// one per request (docs/security.md T-187).
func (h *Handler) revokedUntil(ctx context.Context, id string, until time.Time) (bool, error) {
	r, err := h.Store.GetRevocation(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return !r.ExpiresAt.Before(until), nil
}

// revokeRefresh revokes the whole family of a refresh token of client
// (RFC 7009 §2.1; a refresh token's family is its grant).
func (h *Handler) revokeRefresh(ctx context.Context, who audit.Caller, client *storage.Client, raw string) error {
	if secret.PrefixRefreshToken.Parse(raw) != nil {
		return nil // docs/security.md T-65: a truncated token is not ours
	}
	d := secret.Digest(h.Pepper, raw)
	rt, err := h.Store.GetRefreshTokenByDigest(ctx, d)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return unavailable(err)
	case !secret.Equal(rt.Digest, d) || rt.ClientID != client.ID:
		return nil
	}
	// RFC 7009 §2.1: and the access tokens of the same grant.
	n, err := h.endFamily(ctx, rt, "refresh token revoked by client "+client.ID)
	switch {
	case err != nil:
		return unavailable(err)
	case n < 0:
		return nil // already ended: nothing written, no event (T-187)
	}
	h.logger().InfoContext(ctx, "refresh token family revoked", "family", rt.FamilyID, "client_id", client.ID)
	h.audit(ctx, who.Event(h.now(), rt.OrgID, ActionRefreshFamilyRevoke, "refresh_family:"+rt.FamilyID, outcomeRevoked,
		"refresh_tokens_revoked="+strconv.FormatInt(n, 10)))
	return nil
}

// endFamily ends rt's family and returns how many of its refresh tokens
// it marked revoked, or -1 when the family was already ended and nothing
// changed. A public client revokes by client_id alone, unlimited, so
// ending an ended family must write nothing and record nothing
// (docs/security.md T-187).
//
// Ended is the family's grant: row in force with every token of the
// family marked revoked, judged over the whole family at once (the
// UPDATE marks only unmarked tokens and counts them), however long its
// chain of rotations. The row comes first (T-160): without one in force
// the family is ended as new, row then marks. With one, the marks are
// set under it; any that were missing (the marks' UPDATE failed, T-160,
// or missed a racing rotation's successor, T-158, which may have minted
// an access token after the row) make it a revocation again, and the row
// is written anew to outlive that token.
func (h *Handler) endFamily(ctx context.Context, rt storage.RefreshToken, reason string) (int64, error) {
	r, err := h.Store.GetRevocation(ctx, tokens.RevocationIDGrant(rt.FamilyID))
	switch {
	case errors.Is(err, storage.ErrNotFound), err == nil && !r.ExpiresAt.After(h.now()):
		return tokens.EndFamily(ctx, h.Store, rt.FamilyID, reason, h.now(), rt.ExpiresAt, h.RevocationKeep)
	case err != nil:
		return 0, err
	}
	n, err := h.Store.RevokeRefreshFamily(ctx, rt.FamilyID)
	switch {
	case err != nil:
		return n, err
	case n == 0:
		return -1, nil
	}
	return n, h.Store.PutRevocation(ctx, tokens.FamilyRevocation(rt.FamilyID, reason, h.now(), rt.ExpiresAt, h.RevocationKeep))
}

// revokeOwnSecret lets a client revoke its own secret (it must then be
// given a new one with `sts client rotate-secret`). It authenticated with
// some credential, possibly this very secret.
func (h *Handler) revokeOwnSecret(ctx context.Context, who audit.Caller, client *storage.Client, raw string) error {
	if secret.PrefixClientSecret.Parse(raw) != nil || !secret.Equal(client.SecretDigest, secret.Digest(h.Pepper, raw)) {
		return nil
	}
	if err := clearSecret(ctx, h.Store, client.ID, client.SecretDigest, h.now()); err != nil {
		return unavailable(err)
	}
	h.audit(ctx, who.Event(h.now(), client.OrgID, ActionClientSecretRevoke, "client:"+client.ID, outcomeRevoked, ""))
	return nil
}

const outcomeRevoked = "revoked"

// audit stores the event of a revocation already made. A revocation is
// neither refused nor undone because its event failed
// (docs/design.md#audit): the loss is logged, by action and target (a
// jti, a family or client ID, never a secret).
func (h *Handler) audit(ctx context.Context, ev storage.AuditEvent) {
	if err := h.Store.AppendAudit(ctx, ev); err != nil {
		h.logger().ErrorContext(ctx, "audit event not stored", "action", ev.Action, "target", ev.Target, "err", err)
	}
}

// clearSecret removes a client's secret digest if it is still digest.
func clearSecret(ctx context.Context, s storage.ClientStore, id string, digest []byte, now time.Time) error {
	return s.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
		if secret.Equal(old.SecretDigest, digest) {
			old.SecretDigest = nil
			old.UpdatedAt = storage.Now(now)
		}
		return old, nil
	})
}
