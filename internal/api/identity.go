package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Limits on GetIDToken input and token lifetimes.
const (
	maxAudiences               = 16
	maxAudienceLen             = 512
	DefaultIDTokenLifetime     = time.Hour
	DefaultAccessTokenLifetime = 15 * time.Minute
	// DefaultMaxDelegationDepth is config.DefaultMaxDelegationDepth, the
	// delegation cap when Handler.MaxDelegationDepth is not set.
	DefaultMaxDelegationDepth = 5
	// ClientID is the client_id of access tokens minted by ExchangeToken.
	ClientID = "sts-api"
)

// IdentityService implements gitpod.v1.IdentityService.
type IdentityService struct {
	h *Handler
}

var _ gitpodv1connect.IdentityServiceHandler = (*IdentityService)(nil)

// GetAuthenticatedIdentity returns the caller's organization and subject.
// Needs identity:read (or full access).
func (s *IdentityService) GetAuthenticatedIdentity(ctx context.Context, _ *gitpodv1.GetAuthenticatedIdentityRequest) (*gitpodv1.GetAuthenticatedIdentityResponse, error) {
	id, err := require(ctx, pat.ScopeIdentityRead)
	if err != nil {
		return nil, err
	}
	tier, err := s.h.orgTier(ctx, id)
	if err != nil {
		return nil, err
	}
	return &gitpodv1.GetAuthenticatedIdentityResponse{
		OrganizationId:   id.OrgID,
		OrganizationTier: tier,
		Subject:          &gitpodv1.Subject{Id: id.PrincipalID, Principal: principalToProto(id.Kind)},
	}, nil
}

// GetIDToken mints an ID token whose aud is the requested list, each
// audience once.
// V1 (and unspecified): sub is the principal UUID. V2: sub is Gitpod's
// org:<org-id>/<kind>:<id> (kinds: v2Kinds) and org_id, principal, name
// and email are set.
// The token never outlives the caller's credential and carries its act
// claim (a delegation's actor chain). A credential limited by a Credential
// Access Boundary never gets here (errBoundary). Needs identity:id_token
// (or full access). Each call takes from the credential's rate-limit
// buckets, as an exchange at the token endpoint does (limitCredential):
// resource_exhausted once one is empty.
func (s *IdentityService) GetIDToken(ctx context.Context, req *gitpodv1.GetIDTokenRequest) (res *gitpodv1.GetIDTokenResponse, err error) {
	var minted tokens.IDClaims
	defer func() { // its audit event (docs/security.md D-18)
		if err = s.h.auditIDToken(ctx, req, &minted, err); err != nil {
			res = nil
		}
	}()
	id, err := require(ctx, pat.ScopeIDToken)
	if err != nil {
		return nil, err
	}
	if id.Claims != nil && actDepth(id.Claims.Act) > s.h.delegationCap() {
		// The ID token carries the chain: held to the cap as it is now,
		// as a re-exchange and a refresh are, not as it was when the
		// credential was issued (docs/security.md T-250, T-233).
		return nil, sts.Errorf(sts.PermissionDenied, "the credential's delegation chain is longer than this server issues")
	}
	aud := req.GetAudience()
	if len(aud) == 0 {
		return nil, sts.Errorf(sts.Invalid, "audience required")
	}
	if len(aud) > maxAudiences {
		return nil, sts.Errorf(sts.Invalid, "at most %d audiences", maxAudiences)
	}
	for _, a := range aud {
		if a == "" || len(a) > maxAudienceLen || strings.TrimSpace(a) != a {
			return nil, sts.Errorf(sts.Invalid, "invalid audience")
		}
	}
	// An audience named twice is named once, in first-seen order: a
	// repeated aud value means nothing to a relying party, and Gitpod's
	// server accepts such a list rather than refusing it (docs/api.md).
	aud = dedupe(aud)
	// The credential's buckets pay before the storage read (V2) and the
	// signature (docs/security.md A-57).
	if err := s.h.limitCredential(ctx, id); err != nil {
		return nil, err
	}
	now := s.h.now()
	exp := now.Add(s.h.idTokenLifetime())
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(exp) {
		exp = id.ExpiresAt
	}
	c := tokens.IDClaims{Audience: tokens.Audience(aud), Subject: id.PrincipalID,
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(exp)}
	if id.Claims != nil {
		// A delegated credential's actor chain, unchanged, in V1 and V2
		// alike (docs/api.md, "ID tokens").
		c.Act = id.Claims.Act
	}
	switch req.GetVersion() {
	case gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_UNSPECIFIED, gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V1:
	case gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V2:
		p, err := s.h.principal(ctx, id)
		if err != nil {
			return nil, err
		}
		c.Subject = tokens.SubjectV2(id.OrgID, v2Kind(id.Kind), id.PrincipalID)
		c.OrgID, c.Principal, c.Name, c.Email = id.OrgID, string(id.Kind), p.Name, p.Email
	default:
		return nil, sts.Errorf(sts.Invalid, "unknown id token version")
	}
	if c.Expiry <= c.IssuedAt {
		return nil, sts.Errorf(sts.Unauthenticated, "invalid token") // credential expires within the second
	}
	tok, minted, err := s.h.idTokenIssuer(aud).MintIDToken(ctx, c)
	if err != nil {
		return nil, sts.Wrap(sts.Unavailable, err, "cannot sign tokens now")
	}
	return &gitpodv1.GetIDTokenResponse{Token: tok}, nil
}

// delegationCap is the longest delegation chain (act) a token sts issues
// carries: MaxDelegationDepth, or DefaultMaxDelegationDepth when unset.
func (h *Handler) delegationCap() int {
	if h.MaxDelegationDepth <= 0 {
		return DefaultMaxDelegationDepth
	}
	return h.MaxDelegationDepth
}

// actDepth is the number of actors in the chain a.
func actDepth(a *tokens.Actor) int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// idTokenIssuer is RS256Issuer when any of aud is in RS256Audiences (or
// they hold "*"), else Issuer: relying parties that accept only RS256 are
// named in id_tokens.rs256_audiences (docs/configuration.md).
func (h *Handler) idTokenIssuer(aud []string) *tokens.Issuer {
	if h.RS256Issuer == nil {
		return h.Issuer
	}
	for _, a := range h.RS256Audiences {
		if a == "*" || slices.Contains(aud, a) {
			return h.RS256Issuer
		}
	}
	return h.Issuer
}

// ExchangeToken spends a one-time exchange token (atomically: of
// concurrent uses exactly one succeeds) and returns an access token for
// its principal. It needs no Authorization header. The token carries what
// the exchange token's creator derives from and never outlives the
// creator's credential (docs/security.md A-50).
//
// Each redemption, issued or refused (a malformed, unknown, expired or
// spent exchange token included), leaves a token.exchange event
// (docs/security.md D-18).
func (s *IdentityService) ExchangeToken(ctx context.Context, req *gitpodv1.ExchangeTokenRequest) (res *gitpodv1.ExchangeTokenResponse, err error) {
	if req.GetExchangeToken() == "" {
		return nil, sts.Errorf(sts.Invalid, "exchangeToken is required")
	}
	// What the creator's credential derives from may have gone since the
	// exchange token was made (its PAT narrowed, deleted or regenerated,
	// a client or pool disabled): the token it would buy is refused at
	// every use, so it is not minted (docs/security.md A-67), and the
	// exchange token is spent, as for a creator disabled since. Judged
	// before the exchange token is spent, and so is everything that may
	// fail for a while: signing, and in audit.mode required storing the
	// issuance's event. Then only the spend can fail, and when storage
	// cannot say, or cannot sign or store now, the answer is unavailable
	// and the exchange token stays redeemable (docs/security.md A-70).
	var gone error // why a source refused it
	var tok string
	var minted tokens.AccessClaims
	var src []byte            // the sources minted carries, for its events
	var stored, unstored bool // the issuance's event committed (audit.mode required), or refused so
	check := func(ctx context.Context, au pat.Authenticated, r pat.ExchangeRedemption) (string, error) {
		src = au.Claims
		c, err := s.claimsBought(au)
		if err != nil {
			return "", err
		}
		if v := s.h.Verifier; v != nil && v.Sources != nil {
			if err := v.Sources.CheckSource(ctx, &c); err != nil {
				if sts.ErrorCode(err) == sts.Unavailable {
					return "", err
				}
				gone = err
				return pat.ExchangeSourceGone, sts.Errorf(sts.Unauthenticated, "invalid token")
			}
		}
		// A timed row written since the exchange token was made (`sts
		// revoke subject` of its principal, or of its creator: src_sub)
		// would not end the token it buys, issued after the row: it is
		// judged as issued when the exchange token was created, by which
		// every credential it derives from was issued; exactly, as both
		// times are stored to the microsecond, so one created after the
		// row, in the same second too, is redeemed. A hit ends it for
		// good (docs/security.md A-73).
		if v := s.h.Verifier; v != nil && v.Revocations != nil {
			revoked, err := v.Revocations.IsRevokedAt(ctx, &c, r.CreatedAt)
			if err != nil {
				return "", sts.Wrap(sts.Unavailable, err, "storage unavailable")
			}
			if revoked {
				gone = errors.New("a revocation ends what it would buy")
				return pat.ExchangeRevoked, sts.Errorf(sts.Unauthenticated, "invalid token")
			}
		}
		if tok, minted, err = s.h.Issuer.MintAccessToken(ctx, c); err != nil {
			return "", sts.Wrap(sts.Unavailable, err, "cannot sign tokens now")
		}
		if len(tok) > tokens.MaxTokenSize {
			// One our verifier refuses: not handed out, and the exchange
			// token is spent, as it would make the same token again (one
			// created before CreateExchangeToken bounded its sources,
			// maxSourceBytes; docs/security.md T-220).
			gone = fmt.Errorf("the token it buys would be %d bytes, over the %d our verifier accepts", len(tok), tokens.MaxTokenSize)
			tok, minted = "", tokens.AccessClaims{}
			return pat.ExchangeTooLarge, sts.Errorf(sts.Unauthenticated, "invalid token")
		}
		if stored, err = s.h.commitExchange(ctx, &r, au.Claims, &minted); err != nil {
			unstored = true
			return "", err
		}
		return "", nil
	}
	_, red, err := s.h.PATs.RedeemExchangeToken(ctx, req.GetExchangeToken(), check)
	if err != nil && minted.ID != "" && !unstored {
		// Minted, and the check passed: the spend failed (a concurrent
		// redemption won, storage failed). The token is withheld, and
		// its event says so by its jti, after the issued one committed
		// in audit.mode required (docs/security.md D-18).
		red.Reason = reasonWithheld
	}
	defer func() {
		switch {
		case unstored, stored && err == nil:
			// Its event is recorded already: audit_unavailable, or issued.
		default:
			// Refused, or withheld.
			if err = s.h.auditExchange(ctx, &red, src, &minted, err); err != nil {
				res = nil
			}
		}
	}()
	if err != nil {
		if gone != nil && (red.Reason == pat.ExchangeSourceGone || red.Reason == pat.ExchangeRevoked || red.Reason == pat.ExchangeTooLarge) {
			s.h.logger().InfoContext(ctx, "exchange token rejected", "exchange_token_id", red.TokenID, "reason", gone.Error())
		}
		return nil, err
	}
	return &gitpodv1.ExchangeTokenResponse{AccessToken: tok}, nil
}

// claimsBought are the claims of the access token a redeemed exchange
// token buys: its principal's, full access, for the access-token lifetime
// but never past the creator's credential, carrying what that credential
// derives from (docs/security.md A-50).
func (s *IdentityService) claimsBought(au pat.Authenticated) (tokens.AccessClaims, error) {
	var src exchangeClaims
	if len(au.Claims) > 0 {
		if err := json.Unmarshal(au.Claims, &src); err != nil {
			return tokens.AccessClaims{}, sts.Wrap(sts.Internal, err, "internal error")
		}
	}
	now := s.h.now()
	exp := now.Add(s.h.accessTokenLifetime())
	if !au.ExpiresAt.IsZero() && au.ExpiresAt.Before(exp) {
		exp = au.ExpiresAt
	}
	c := tokens.AccessClaims{
		Subject: au.Principal.ID, Audience: tokens.Audience{s.h.Audience},
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(exp),
		ClientID: ClientID, Scope: strings.Join(au.Scopes, " "),
		OrgID: au.OrgID, Principal: string(au.Principal.Kind),
	}
	src.carry(&c)
	if c.Expiry <= c.IssuedAt {
		return tokens.AccessClaims{}, sts.Errorf(sts.Unauthenticated, "invalid token") // the creator's credential expires within the second
	}
	return c, nil
}

// orgTier is the caller's organization tier, from the credential when
// authentication loaded it, else from storage.
func (h *Handler) orgTier(ctx context.Context, id *Identity) (string, error) {
	if id.OrgTier != "" {
		return id.OrgTier, nil
	}
	o, err := h.Store.GetOrganization(ctx, id.OrgID)
	if err != nil {
		return "", lookupErr(err, "organization")
	}
	return o.Tier, nil
}

// principal is the caller's principal record.
func (h *Handler) principal(ctx context.Context, id *Identity) (storage.Principal, error) {
	if id.Principal != nil {
		return *id.Principal, nil
	}
	p, err := h.Store.GetPrincipal(ctx, id.PrincipalID)
	if err != nil {
		return storage.Principal{}, lookupErr(err, "principal")
	}
	return p, nil
}

// dedupe returns ss without repeats, the first occurrence of each kept in
// order; ss itself is not changed.
func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
