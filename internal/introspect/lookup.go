package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// introspect answers for token. The token_type_hint is not needed: every
// token we issue says its type by its shape or prefix. Only an
// unavailability is an error; every token problem is inactive
// (docs/security.md T-62).
func (h *Handler) introspect(ctx context.Context, token string, c *caller) (*Response, error) {
	var resp *Response
	var err error
	switch {
	case strings.HasPrefix(token, string(secret.PrefixRefreshToken)):
		resp, err = h.refresh(ctx, token)
	case strings.HasPrefix(token, string(secret.PrefixPAT)):
		resp, err = h.pat(ctx, token)
	case strings.Count(token, ".") == 2:
		resp, err = h.access(ctx, token)
	default:
		return inactive, nil
	}
	if err != nil {
		return nil, err
	}
	if !resp.Active || !c.mayView(resp) {
		return inactive, nil
	}
	return resp, nil
}

// mayView stops a caller from learning about tokens of another
// organization or meant for another resource server (docs/security.md T-62,
// Keycloak CVE-2026-37979): every caller sees tokens of its own
// organization only; there, a client sees its own tokens and access tokens
// for an audience it holds, and a caller with the introspect permission
// sees every token. A refresh token is never for a resource server: it is
// its client's credential at the token endpoint, whatever audience its
// family mints for, so only that client sees it (docs/security.md T-142).
// Anything else is {"active":false} (docs/api.md, "Clients").
func (c *caller) mayView(r *Response) bool {
	if c.orgID == "" || r.OrgID != c.orgID {
		return false
	}
	if c.privileged {
		return true
	}
	if c.client == nil {
		return false
	}
	if r.ClientID != "" && r.ClientID == c.client.ID {
		return true
	}
	if r.TokenType == TypeRefresh {
		return false
	}
	return slices.ContainsFunc(r.Audience, func(a string) bool { return slices.Contains(c.client.Audiences, a) })
}

// access verifies one of our access JWTs, revocation included; its
// audience is judged by mayView, not by the verifier.
func (h *Handler) access(ctx context.Context, raw string) (*Response, error) {
	c, err := h.Tokens.VerifyAccessTokenAnyAudience(ctx, raw)
	switch {
	case err == nil:
		return fromAccess(c), nil
	case unavailableErr(err):
		return nil, err // F-18: never active:false for a token that may be valid
	default:
		return inactive, nil
	}
}

// refresh looks a refresh token up by digest. A rotated token is inactive
// even inside the grace window: only the token endpoint honours grace.
func (h *Handler) refresh(ctx context.Context, raw string) (*Response, error) {
	if h.Refresh == nil || secret.PrefixRefreshToken.Parse(raw) != nil {
		return inactive, nil // T-65: malformed or truncated, no lookup
	}
	d := secret.Digest(h.Pepper, raw)
	rt, err := h.Refresh.GetRefreshTokenByDigest(ctx, d)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return inactive, nil
	case err != nil:
		return nil, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	case !secret.Equal(rt.Digest, d) || rt.Revoked || !rt.RotatedAt.IsZero() || !h.now().Before(rt.ExpiresAt):
		return inactive, nil
	}
	resp := &Response{
		Active: true, Scope: strings.Join(rt.Scopes, " "), ClientID: rt.ClientID, Subject: rt.Subject,
		Audience: rt.Audiences, Issuer: h.Tokens.Issuer, Expiry: rt.ExpiresAt.Unix(), IssuedAt: rt.CreatedAt.Unix(),
		NotBefore: rt.CreatedAt.Unix(), JTI: rt.ID, TokenType: TypeRefresh, OrgID: rt.OrgID, Principal: rt.PrincipalID,
	}
	var c tokens.FamilyTemplate
	if len(rt.Claims) > 0 && json.Unmarshal(rt.Claims, &c) == nil {
		resp.Act, resp.CAB, resp.Pool, resp.Provider, resp.Src = c.Act, c.CAB, c.Pool, c.Provider, c.Src
	}
	// Active only while a refresh would be honoured: what the family
	// derives from (its principal, client, PAT, pool, the tokens it was
	// exchanged from) still stands, as the refresh grant re-checks
	// (docs/security.md ).
	// A family the browser flow began holding a scope consent never
	// grants (sts:admin, introspect; issued before that rule) is refused
	// at every refresh, whatever scope is asked (docs/security.md A-44,
	// A-75), so it is inactive.
	consentNeverGrants := func(sc string) bool { return !pat.ConsentMayGrant(sc) }
	if tokens.BegunByAuthorizationCode(&c.AccessClaims) && slices.ContainsFunc(rt.Scopes, consentNeverGrants) {
		return inactive, nil
	}
	c.Subject, c.ClientID = rt.Subject, rt.ClientID // the family's own rows (docs/security.md T-160)
	switch revoked, err := tokens.FamilySourceRevoked(ctx, h.Refresh, &c, rt.FamilyID, rt.CreatedAt); {
	case err != nil:
		return nil, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	case revoked:
		return inactive, nil
	}
	if h.Tokens.Sources != nil {
		c.Subject, c.OrgID, c.Principal, c.ClientID = rt.Subject, rt.OrgID, rt.PrincipalID, rt.ClientID
		// Not the family's scope: a refresh asking for what the PAT,
		// client or pool still allows is honoured (docs/security.md A-52).
		// But its audiences, which a refresh cannot change: one its client
		// or pool no longer allows ends the family.
		c.Scope, c.Audience = "", rt.Audiences
		check := func(ctx context.Context, t *tokens.FamilyTemplate) error {
			return h.Tokens.Sources.CheckSource(ctx, &t.AccessClaims)
		}
		if fc, ok := h.Tokens.Sources.(tokens.FamilyChecker); ok {
			// And what only a refresh needs: the client's refresh_token
			// grant and the grant that began the family, the pool's
			// offline_access.
			check = fc.CheckFamily
		}
		switch err := check(ctx, &c); {
		case errors.Is(err, tokens.ErrSourceUnavailable):
			return nil, err
		case err != nil:
			return inactive, nil
		}
		// A refresh narrows the family's scope to what is still allowed,
		// never to nothing: a family none of whose scopes its client, pool
		// or PAT still allows refreshes no more (invalid_scope), and one
		// that keeps some is reported with those (docs/security.md A-108).
		if len(rt.Scopes) > 0 {
			kept, err := h.scopesStanding(ctx, c.AccessClaims, rt.Scopes)
			switch {
			case err != nil:
				return nil, err
			case len(kept) == 0:
				return inactive, nil
			}
			resp.Scope = strings.Join(kept, " ")
		}
	}
	return resp, nil
}

// scopesStanding returns the scopes of a family, whose claims c carry
// no scope, that a refresh may still ask for: each judged alone by the
// access-token source check (the client still lists it, the pool and
// the PAT still grant it; docs/security.md ). An error is
// only ErrSourceUnavailable's.
func (h *Handler) scopesStanding(ctx context.Context, c tokens.AccessClaims, scopes []string) ([]string, error) {
	var kept []string
	for _, s := range scopes {
		c.Scope = s
		switch err := h.Tokens.Sources.CheckSource(ctx, &c); {
		case errors.Is(err, tokens.ErrSourceUnavailable):
			return nil, err
		case err == nil:
			kept = append(kept, s)
		}
	}
	return kept, nil
}

// pat introspects a personal access token through the pat service (its
// cache bounds revocation visibility at 5 s, docs/design.md#storage-and-replicas).
// Its claims read as an access token's would: sub the owner's ID,
// principal the owner's kind (docs/api.md).
func (h *Handler) pat(ctx context.Context, raw string) (*Response, error) {
	if h.PATs == nil {
		return inactive, nil
	}
	a, err := h.PATs.Authenticate(ctx, raw)
	switch {
	case err == nil:
	case unavailableErr(err):
		return nil, err
	default:
		return inactive, nil
	}
	return &Response{
		Active: true, Scope: strings.Join(a.Scopes, " "), Subject: a.Principal.ID, Issuer: h.Tokens.Issuer,
		Expiry: a.ExpiresAt.Unix(), JTI: a.TokenID, TokenType: TypeBearer, OrgID: a.OrgID, Principal: string(a.Principal.Kind),
	}, nil
}

// unavailableErr reports whether err means "could not decide" (storage or
// revocation check down), which must be 503 and never an answer.
func unavailableErr(err error) bool {
	if e, ok := errors.AsType[*oauth2.Error](err); ok {
		return e.HTTPStatus() == http.StatusServiceUnavailable
	}
	return sts.ErrorCode(err) == sts.Unavailable
}
