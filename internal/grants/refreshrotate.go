package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

var errRotated = errors.New("already rotated")

// Exchange implements [Grant]: verify, rotate (or honour the grace
// window, or revoke the family on reuse; or, at Google's /v1/oauthtoken,
// keep the token), then mint. Every refusal is
// invalid_grant; a storage failure is 503 and changes nothing the client
// could rely on.
func (g *Refresh) Exchange(ctx context.Context, req *Request, client *storage.Client) (*Response, error) {
	// Grant type first, before any lookup; the full check follows below.
	if err := CheckClient(client, Issuance{Grant: g.Type()}); err != nil {
		return nil, err
	}
	raw := req.form.Get("refresh_token")
	if raw == "" {
		return nil, badRequest(ReasonParameterMissing, errors.New("refresh_token is required"))
	}
	// requested_token_type as at token exchange, before the token is
	// looked up: a type we do not issue leaves it as it was
	// (docs/security.md T-53).
	issuedType, err := issuedTokenType(req)
	if err != nil {
		return nil, err
	}
	// Format first: truncated or altered tokens never reach storage
	// (docs/security.md T-65, T-66).
	if secret.PrefixRefreshToken.Parse(raw) != nil {
		return nil, invalidGrant(ReasonRefreshInvalid, errors.New("malformed refresh token"))
	}
	d := secret.Digest(g.Pepper, raw)
	rt, err := g.Store.GetRefreshTokenByDigest(ctx, d)
	now := storage.Now(nowOf(g.Now))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, invalidGrant(ReasonRefreshInvalid, errors.New("unknown refresh token"))
	case err != nil:
		return nil, unavailable("storage_unavailable", err)
	case !secret.Equal(rt.Digest, d) || rt.ClientID != client.ID:
		// Bound to its client (RFC 6749 §6): another client learns nothing.
		return nil, invalidGrant(ReasonRefreshInvalid, errors.New("refresh token of another client"))
	case rt.Revoked || !now.Before(rt.ExpiresAt):
		return nil, invalidGrant(ReasonRefreshInvalid, errors.New("refresh token revoked or expired"))
	}
	// A rotated token is judged as a retry or a reuse before anything
	// else the request asks: a reuse ends the family even when the
	// request would fail another check (a wrong pool, a wider scope), so
	// a stolen old token cannot be probed without ending what it came
	// from (RFC 9700 §4.14.2; docs/security.md T-143). A retry within the
	// window goes on, and rotate finds the same successor again.
	if !rt.RotatedAt.IsZero() {
		if _, err := g.retried(ctx, rt, g.successor(rt, raw, now), now); err != nil {
			return nil, err
		}
	}
	scopes, err := narrow(req.Scopes, rt.Scopes)
	if err != nil {
		return nil, err
	}
	aud, err := narrowTarget(req, rt.Audiences)
	if err != nil {
		return nil, err
	}
	// What issuance checked is checked again on every refresh: the pool
	// and provider, the principal the family acts as, and the client's
	// allowlists (the same client check as every grant). A refusal leaves
	// the family as it was, so re-enabling what was disabled resumes it.
	var tmpl tokens.FamilyTemplate
	if len(rt.Claims) > 0 {
		if err := json.Unmarshal(rt.Claims, &tmpl); err != nil {
			return nil, fmt.Errorf("refresh token claims: %w", err)
		}
	}
	// A pool the request names (identity_pool_id, required on the
	// Confluent path) is the family's, or nothing is issued and the
	// token stays as it was: a family of another pool, or of none, is
	// never refreshed as if the named pool had judged it
	// (docs/security.md T-143).
	if req.PoolID != "" && (tmpl.Pool != req.PoolID || (req.ProviderID != "" && tmpl.Provider != req.ProviderID)) {
		return nil, invalidGrant(ReasonRefreshPoolMismatch, errors.New("the refresh token's family is not of the named pool"))
	}
	if reason, sc := browserFlowRefusal(rt.Scopes); reason != "" && tokens.BegunByAuthorizationCode(&tmpl.AccessClaims) {
		// Begun through the browser flow before it stopped granting
		// sts:admin or introspect: the whole family ends, whatever scope
		// is asked (docs/security.md ).
		return nil, invalidGrant(reason, fmt.Errorf("authorization-code family holds %s", sc))
	}
	pool, principal, session, err := g.recheck(ctx, rt, tmpl, scopes)
	if err != nil {
		return nil, err
	}
	srcMax, err := g.sourcePoolsMax(ctx, tmpl.SourcePools)
	if err != nil {
		return nil, err
	}
	if err := CheckClient(client, Issuance{Grant: g.Type(), OrgID: rt.OrgID, Pool: pool, Scopes: scopes, Audiences: rt.Audiences}); err != nil {
		return nil, err
	}
	// A family is a standing form of the grant that began it: a client
	// that no longer holds that grant (token exchange, jwt-bearer,
	// authorization_code) refreshes none of the families it began with
	// it, and giving the grant back resumes them (docs/security.md A-98).
	// A family stored before its grant was recorded is judged by the grant
	// its shape says began it (tokens.FamilyTemplate.BegunBy).
	if begunBy := tmpl.BegunBy(); !slices.ContainsFunc(begunBy, func(g string) bool { return clientauth.AllowsGrant(client, g) }) {
		return nil, refuse(oauth2.ErrorUnauthorizedClient, "client may not use this grant", ReasonGrantNotAllowed,
			fmt.Errorf("the family was begun by the %s grant, which the client no longer holds", strings.Join(begunBy, " or ")))
	}
	if err := withinPool(pool, scopes, rt.Audiences, g.Audiences, storage.PrincipalKind(rt.PrincipalID).Valid()); err != nil {
		return nil, err
	}
	req.trace.pool, req.trace.provider, req.trace.actor = tmpl.Pool, tmpl.Provider, "client:"+client.ID
	// The lifetime is judged before the token is used or rotated: a
	// refused expires_in leaves it as it was.
	life, err := g.accessLifetime(req, rt, pool, srcMax, now)
	if err != nil {
		return nil, err
	}
	if !rotates(req, client) && rt.RotatedAt.IsZero() {
		// Google's dialect: the token stays, and the answer names none
		// (docs/design.md, "Refresh rotation").
		if err := g.markUsed(ctx, rt, now); err != nil {
			return nil, err
		}
		req.trace.org = rt.OrgID
		resp, err := g.mint(ctx, req, rt, "", issuedType, scopes, aud, life, g.idClaims(tmpl, rt, principal, scopes), now)
		if err == nil {
			g.touch(ctx, session, now)
		}
		return resp, err
	}
	succ, err := g.rotate(ctx, rt, raw, now)
	if err != nil {
		return nil, err
	}
	req.trace.org = rt.OrgID
	resp, err := g.mint(ctx, req, succ, g.successorSecret(raw), issuedType, scopes, aud, life, g.idClaims(tmpl, rt, principal, scopes), now)
	if err == nil {
		g.touch(ctx, session, now)
	}
	return resp, err
}

// SessionWriter ends and touches browser sessions
// (storage.SessionStore): the refresh grant's [Refresh.Sessions] is one
// when a refresh is to count as its session's activity (docs/security.md
//
type SessionWriter interface {
	TouchWebSession(ctx context.Context, id string, lastSeen time.Time) error
	DeleteWebSession(ctx context.Context, id string) error
}

// touch records a successful refresh as a use of the browser session w
// its family is bound to (zero: none): a refresh is the session's
// activity, as a page view is, and is written as seldom, at most once a
// storage.WebSessionTouchEvery (docs/security.md A-104). A failed write
// leaves the refresh standing, as a page view's does.
func (g *Refresh) touch(ctx context.Context, w storage.WebSession, now time.Time) {
	sw, ok := g.Sessions.(SessionWriter)
	if w.ID == "" || !ok || now.Sub(w.LastSeenAt) < storage.WebSessionTouchEvery {
		return
	}
	if err := sw.TouchWebSession(ctx, w.ID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		g.logger().WarnContext(ctx, "refresh: recording the browser session's use failed", "session_id", w.ID, "error", err)
	}
}

// rotates reports whether this refresh rotates the token. At Google's
// /v1/oauthtoken a confidential client's refresh token stays the same, as
// Google's own do: an external_account_authorized_user credential file
// holds one refresh token for every process started from it, and a
// rotation would make the second process's refresh a reuse that ends the
// family for all (docs/security.md T-112). RFC 9700 §4.14.2 requires
// rotation (or sender-constraining) of public clients' refresh tokens
// only; a confidential client proves its secret at every refresh. A token
// already rotated (at /oauth2/token) is still judged as a retry or a
// reuse.
func rotates(req *Request, client *storage.Client) bool {
	return req.Dialect != googleOAuth.name || client.AuthMethod == oauth2.AuthMethodNone
}

// markUsed records the first refresh with a token that is not rotated by
// it. If the token is a successor, that use closes its parent's retry
// window as a rotation does at /oauth2/token (retried; docs/security.md
// T-119). Only a successor young enough for its parent's window to be
// still open is written, once: later refreshes, every refresh of an older
// token, and every refresh of a family's first token (its ID is the
// family's: it has no parent, so no window to close) cost no write.
func (g *Refresh) markUsed(ctx context.Context, rt storage.RefreshToken, now time.Time) error {
	if rt.ID == rt.FamilyID || !rt.UsedAt.IsZero() || now.Sub(rt.CreatedAt) > cmpOr(g.Grace, DefaultRefreshGrace) {
		return nil
	}
	err := g.Store.UpdateRefreshToken(ctx, rt.ID, func(old storage.RefreshToken) (storage.RefreshToken, error) {
		if old.UsedAt.IsZero() {
			old.UsedAt = now
		}
		return old, nil
	})
	if err != nil {
		// Without the record a retry of the parent could still be answered
		// with this token: refuse rather than leave the window open.
		return unavailable("storage_unavailable", err)
	}
	return nil
}

// withinPool checks a refresh against its pool's ceilings as they are
// now, as the exchange that began the family did: a pool that no longer
// allows offline_access ends its families (invalid_grant), a scope taken
// from the pool since is no longer issued (invalid_scope; asking for the
// scopes still allowed works), and an audience of the family (aud) the
// pool no longer allows, neither its own nor one of the server's
// (server, as at the exchange), ends the family, which cannot change
// audience (invalid_target, as when its client no longer lists it;
// docs/security.md A-61). For a family acting as a principal of ours
// (api) the pool's "*" stands for each scope of our API but sts:admin,
// as at the exchange and in the source checker (A-52, F-113).
func withinPool(pool *trust.Pool, scopes, aud, server []string, api bool) error {
	if pool == nil {
		return nil
	}
	if !slices.Contains(pool.Scopes, ScopeOfflineAccess) {
		return invalidGrant(ReasonScopeExceedsPool, errors.New("the family's pool no longer allows offline_access"))
	}
	for _, s := range scopes {
		if !slices.Contains(pool.Scopes, s) && !(api && pat.KnownScope(s) && pat.Allows(pool.Scopes, s)) {
			return refuse(oauth2.ErrorInvalidScope, descScope, ReasonScopeExceedsPool, fmt.Errorf("scope %q is no longer in the family's pool", s))
		}
	}
	for _, a := range aud {
		if !slices.Contains(server, a) && !slices.Contains(pool.Audiences, a) {
			return refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceNotAllowed, fmt.Errorf("audience %q is no longer allowed by the family's pool", trunc(a)))
		}
	}
	return nil
}

// rotate marks rt rotated and stores its successor in one transaction,
// or, when rt was already rotated, returns that successor again while it
// is unused (and within Grace of the rotation), and revokes the family
// otherwise.
func (g *Refresh) rotate(ctx context.Context, rt storage.RefreshToken, raw string, now time.Time) (storage.RefreshToken, error) {
	succ := g.successor(rt, raw, now)
	err := g.Store.RotateRefreshToken(ctx, rt.ID, succ, func(old storage.RefreshToken) error {
		if !old.RotatedAt.IsZero() || old.Revoked {
			rt = old
			return errRotated
		}
		return nil
	})
	switch {
	case errors.Is(err, errRotated):
		return g.retried(ctx, rt, succ, now)
	case errors.Is(err, storage.ErrAlreadyExists):
		// A concurrent attempt stored the same (derived) successor
		// first: the parent is rotated now, so this is a retry.
		cur, gerr := g.Store.GetRefreshToken(ctx, rt.ID)
		if gerr != nil {
			return storage.RefreshToken{}, unavailable("storage_unavailable", gerr)
		}
		return g.retried(ctx, cur, succ, now)
	case err != nil:
		return storage.RefreshToken{}, unavailable("storage_unavailable", err)
	}
	return succ, nil
}

// successor is the token that rotating rt (presented as raw) stores.
func (g *Refresh) successor(rt storage.RefreshToken, raw string, now time.Time) storage.RefreshToken {
	succ := rt
	succ.ID, succ.Digest, succ.CreatedAt, succ.RotatedAt, succ.SuccessorID = storage.NewID(), secret.Digest(g.Pepper, g.successorSecret(raw)), now, time.Time{}, ""
	return succ
}

// retried handles a rotated parent. The rotation and its successor were
// stored together, so a client whose response was lost (a timeout, a crash
// or failover of this replica) can present the parent again and get the
// same successor, its secret derived again from the parent's: for as long
// as the successor has not been used, up to Grace after the rotation,
// across restarts (docs/design.md, "Refresh rotation"). The successor's
// first use closes that window, whether it rotates the successor
// (/oauth2/token) or not (/v1/oauthtoken, markUsed): from then on the
// parent is a reuse of a rotated token, which revokes the family
// (RFC 9700 §4.14.2).
func (g *Refresh) retried(ctx context.Context, parent, succ storage.RefreshToken, now time.Time) (storage.RefreshToken, error) {
	grace := cmpOr(g.Grace, DefaultRefreshGrace)
	if !parent.Revoked && now.Sub(parent.RotatedAt) <= grace && parent.SuccessorID != "" {
		cur, err := g.Store.GetRefreshToken(ctx, parent.SuccessorID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// Rotated by a version that stored the successor in a
			// second transaction, which did not happen: store it now.
			// Outside any lock, a revocation of the family may have
			// marked the parent since it was read and missed the
			// successor: the parent is read again once the successor
			// is stored, and if revoked the family is ended again
			// (either that read sees the revocation or the revocation's
			// next pass sees the successor; docs/security.md T-158).
			succ.ID = parent.SuccessorID
			if err := g.Store.CreateRefreshToken(ctx, succ); err != nil {
				return storage.RefreshToken{}, unavailable("storage_unavailable", err)
			}
			switch again, err := g.Store.GetRefreshToken(ctx, parent.ID); {
			case err != nil:
				return storage.RefreshToken{}, unavailable("storage_unavailable", err)
			case again.Revoked:
				if _, err := g.Store.RevokeRefreshFamily(ctx, parent.FamilyID); err != nil {
					return storage.RefreshToken{}, unavailable("storage_unavailable", err)
				}
				return storage.RefreshToken{}, invalidGrant(ReasonRefreshInvalid, errors.New("refresh family revoked while its successor was stored"))
			}
			return succ, nil
		case err != nil:
			return storage.RefreshToken{}, unavailable("storage_unavailable", err)
		case cur.RotatedAt.IsZero() && cur.UsedAt.IsZero() && !cur.Revoked && now.Before(cur.ExpiresAt) && secret.Equal(cur.Digest, succ.Digest):
			return cur, nil
		}
	}
	// The family's grant: row first: it ends the family's access tokens
	// (one of them may be the thief's) and every refresh of the family,
	// whatever its revoked flags say (FamilySourceRevoked). If the flags'
	// UPDATE fails the row is kept until the family has expired (every
	// token of a family shares its expiry), so it does the whole job
	// alone (docs/security.md T-160).
	n, err := tokens.EndFamily(ctx, g.Store, parent.FamilyID, ReasonRefreshReused, now, parent.ExpiresAt, g.RevocationKeep)
	if err != nil {
		return storage.RefreshToken{}, unavailable("storage_unavailable", err)
	}
	g.logger().WarnContext(ctx, "refresh token reused; family revoked", "family", parent.FamilyID, "token", parent.ID, "client_id", parent.ClientID, "revoked", n)
	return storage.RefreshToken{}, invalidGrant(ReasonRefreshReused, errors.New("rotated refresh token reused"))
}

// idClaims is the template of the ID token a refresh answers (OIDC Core
// §12.2), nil when it answers none: only a family the authorization_code
// grant began, refreshed with the openid scope, gets one, of the family's
// person and client (aud, so no azp), with the auth_time of the sign-in
// that began it and no nonce; email and name as that grant's, for the
// email and profile scopes of this refresh, as the principal is now.
func (g *Refresh) idClaims(tmpl tokens.FamilyTemplate, rt storage.RefreshToken, p *storage.Principal, scopes []string) *tokens.IDClaims {
	if !slices.Contains(scopes, ScopeOpenID) || !tokens.BegunByAuthorizationCode(&tmpl.AccessClaims) || p == nil {
		return nil
	}
	id := &tokens.IDClaims{Subject: rt.Subject, Audience: tokens.Audience{rt.ClientID}, OrgID: rt.OrgID, Principal: string(p.Kind)}
	if !tmpl.AuthTime.IsZero() {
		id.AuthTime = tokens.NewNumericDate(tmpl.AuthTime)
	}
	if slices.Contains(scopes, "email") {
		id.Email = p.Email
	}
	if slices.Contains(scopes, "profile") {
		id.Name = p.Name
	}
	return id
}

// accessLifetime is the lifetime of the access token a refresh of rt
// issues: the expires_in asked for, or the default, never beyond the
// refresh token, MaxLifetime (the Confluent path's 900 s), the pool's
// maximum nor srcMax, that of the pools it derives from besides
// (docs/design.md#lifetimes). An expires_in beyond any is refused, not
// clamped, as at every grant (docs/security.md T-56).
func (g *Refresh) accessLifetime(req *Request, rt storage.RefreshToken, pool *trust.Pool, srcMax time.Duration, now time.Time) (time.Duration, error) {
	def, maxLife := req.lifetimeBounds(g.AccessLifetime, g.MaxLifetime)
	maxLife = cmpOr(maxLife, DefaultMaxLifetime)
	poolMax := srcMax
	if pool != nil && pool.MaxTokenLifetime > 0 && (poolMax <= 0 || pool.MaxTokenLifetime < poolMax) {
		poolMax = pool.MaxTokenLifetime // the pool's maximum as it is now
	}
	now = now.Truncate(time.Second) // as mint's
	if req.Lifetime > 0 {
		remaining := rt.ExpiresAt.Sub(now).Truncate(time.Second)
		switch {
		case req.Lifetime > maxLife:
			return 0, badRequest(ReasonLifetimeExceedsMax, fmt.Errorf("expires_in %d is above the maximum of %d seconds", secs(req.Lifetime), secs(maxLife)))
		case poolMax > 0 && req.Lifetime > poolMax:
			return 0, badRequest(ReasonLifetimeExceedsPool, fmt.Errorf("expires_in %d is above the pool's maximum of %d seconds", secs(req.Lifetime), secs(poolMax)))
		case req.Lifetime > remaining:
			return 0, badRequest(ReasonLifetimeExceedsSubject, fmt.Errorf("expires_in %d is beyond the refresh token's expiry (%d seconds left)", secs(req.Lifetime), secs(remaining)))
		}
		return req.Lifetime, nil
	}
	life := min(cmpOr(def, DefaultLifetime), maxLife, rt.ExpiresAt.Sub(now))
	if poolMax > 0 {
		life = min(life, poolMax)
	}
	return life, nil
}

// mint issues the access token from the family's claim template, for aud
// (narrowTarget), living life (accessLifetime), answered as issuedType
// (issuedTokenType), and the ID token of id (nil: none) with at_hash of it.
func (g *Refresh) mint(ctx context.Context, req *Request, rt storage.RefreshToken, rawSucc, issuedType string, scopes, aud []string,
	life time.Duration, id *tokens.IDClaims, now time.Time,
) (*Response, error) {
	var c tokens.AccessClaims
	if err := json.Unmarshal(rt.Claims, &c); err != nil {
		return nil, fmt.Errorf("refresh token claims: %w", err)
	}
	// A family begun by a development build that carried may_act without
	// its issuer holds it bare: minted under its src's issuer, as one
	// begun today (docs/security.md T-167).
	c.MayAct = c.JudgedMayAct()
	now = now.Truncate(time.Second)
	c.Subject, c.OrgID, c.Principal, c.ClientID = rt.Subject, rt.OrgID, rt.PrincipalID, rt.ClientID
	c.Audience, c.Scope = aud, joinSpace(scopes)
	if c.GrantID == "" {
		// The family's own grant. A family begun before its template
		// named itself (docs/security.md T-221) holds the grant_id of
		// the family its first token was exchanged from, kept.
		c.GrantID = rt.FamilyID
	}
	c.IssuedAt, c.NotBefore, c.Expiry = tokens.NewNumericDate(now), tokens.NewNumericDate(now), tokens.NewNumericDate(now.Add(life))
	tok, c, err := g.Issuer.MintAccessToken(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	req.trace.jti = c.ID
	resp := &Response{AccessToken: tok, IssuedTokenType: issuedType, TokenType: oauth2.TokenTypeBearer,
		ExpiresIn: int64(life / time.Second), Scope: c.Scope, RefreshToken: rawSucc}
	if id != nil {
		id.IssuedAt, id.Expiry = c.IssuedAt, c.Expiry
		iss := g.Issuer
		if g.IDTokens != nil {
			iss = g.IDTokens(id.Audience)
		}
		// at_hash binds it to the access token issued with it (OIDC Core
		// §3.1.3.6), as the authorization_code grant's.
		if resp.IDToken, _, err = iss.MintIDTokenWith(ctx, *id, tok); err != nil {
			return nil, fmt.Errorf("mint id token: %w", err)
		}
	}
	return resp, nil
}

// sourcePoolsMax is the least maximum token lifetime, as they are now, of
// the pools a family derives from besides its own (src_pool: a
// delegation's actor's pool, and those of the tokens it came from): its
// access tokens act for that actor too, so each lives no longer than the
// actor's pool allows, as the exchange that began the family did
// (docs/security.md T-168). 0: none sets one. recheck has judged those
// pools already (CheckSource); one gone since is refused the same way.
func (g *Refresh) sourcePoolsMax(ctx context.Context, pools []string) (time.Duration, error) {
	var out time.Duration
	for _, e := range pools {
		if g.Trust == nil {
			return 0, unavailable(string(trust.ReasonUnavailable), errors.New("no trust registry to read the family's actor pool"))
		}
		id, provider, _ := strings.Cut(e, "/")
		p, err := g.Trust.Check(ctx, id, provider)
		switch {
		case err != nil && trust.ReasonOf(err) == trust.ReasonUnavailable:
			return 0, unavailable(string(trust.ReasonUnavailable), err)
		case err != nil:
			return 0, invalidGrant(string(trust.ReasonOf(err)), err)
		case p.MaxTokenLifetime > 0 && (out == 0 || p.MaxTokenLifetime < out):
			out = p.MaxTokenLifetime
		}
	}
	return out, nil
}

func (g *Refresh) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// recheck re-runs the issuance checks for a family: its delegation chain
// is within the cap, its pool and provider exist and are enabled, a
// pool's principal binding still names the family's subject, and a
// family that acts as a principal (a bound pool, a PAT's owner) has that
// principal enabled in the family's organization. It returns the pool,
// nil when the family has none, and the principal, nil when the family
// acts as none.
func (g *Refresh) recheck(ctx context.Context, rt storage.RefreshToken, c tokens.FamilyTemplate, scopes []string) (*trust.Pool, *storage.Principal, storage.WebSession, error) {
	// The cap is the exchange's, as it is now: checked only when the
	// family began, a lowered cap left every family begun under the old
	// one minting the whole chain (docs/security.md T-166).
	if actDepth(c.Act) > delegationCap(g.MaxDelegationDepth) {
		return nil, nil, storage.WebSession{}, invalidGrant(ReasonDelegationTooDeep, errors.New("the family's delegation chain is longer than the delegation depth cap"))
	}
	var pool *trust.Pool
	if c.Pool != "" {
		if g.Trust == nil {
			return nil, nil, storage.WebSession{}, unavailable(string(trust.ReasonUnavailable), errors.New("no trust registry to re-check the family's pool"))
		}
		p, err := g.Trust.Check(ctx, c.Pool, c.Provider)
		switch {
		case err != nil && trust.ReasonOf(err) == trust.ReasonUnavailable:
			return nil, nil, storage.WebSession{}, unavailable(string(trust.ReasonUnavailable), err)
		case err != nil:
			return nil, nil, storage.WebSession{}, invalidGrant(string(trust.ReasonOf(err)), err)
		case p.OrgID != rt.OrgID:
			return nil, nil, storage.WebSession{}, invalidGrant(ReasonRefreshInvalid, errors.New("the family's pool moved organization"))
		case p.PrincipalID != rt.Subject && (p.PrincipalID != "" || rt.PrincipalID != ""):
			// Bound since, unbound since, or bound to another principal.
			return nil, nil, storage.WebSession{}, invalidGrant(ReasonPoolPrincipal, errors.New("the pool's principal binding changed"))
		}
		pool = p
	}
	var principal *storage.Principal
	if rt.PrincipalID != "" { // the principal kind: the family's subject is a principal
		if g.Principals == nil {
			return nil, nil, storage.WebSession{}, unavailable(ReasonPoolPrincipal, errors.New("no principal store to re-check the family's principal"))
		}
		p, err := g.Principals.GetPrincipal(ctx, rt.Subject)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return nil, nil, storage.WebSession{}, invalidGrant(ReasonPrincipalDisabled, err)
		case err != nil:
			return nil, nil, storage.WebSession{}, unavailable("storage_unavailable", err)
		case p.Disabled || p.OrgID != rt.OrgID:
			return nil, nil, storage.WebSession{}, invalidGrant(ReasonPrincipalDisabled, errors.New("principal "+p.ID+" disabled or of another organization"))
		}
		principal = &p
	}
	c.Subject, c.ClientID = rt.Subject, rt.ClientID // the family's own rows (docs/security.md T-160)
	switch revoked, err := tokens.FamilySourceRevoked(ctx, g.Store, &c, rt.FamilyID, rt.CreatedAt); {
	case err != nil:
		return nil, nil, storage.WebSession{}, unavailable("storage_unavailable", err)
	case revoked:
		return nil, nil, storage.WebSession{}, invalidGrant(tokens.Reason(tokens.ErrRevoked), errors.New("a token the family was begun from is revoked"))
	}
	// A family bound to the browser session it was begun in ends with it:
	// signed out, ended from the session list, trimmed, expired, another
	// person signed in over it (docs/security.md A-99); the same person
	// signing in again continues it. One read by an index. Judged after the revocation rows, so a
	// revoked family is refused as revoked. A refresh is the session's
	// activity, judged by its idle timeout as a page view is, and
	// by its sign-in method as the pages judge it (a removed or repointed
	// upstream provider, A-51, A-105): a session found idle, past its end
	// or of a method no longer configured has ended, and is ended here as
	// the pages would end it.
	session, err := tokens.CheckFamilySession(ctx, g.Sessions, &c, nowOf(g.Now), g.SessionBounds)
	switch {
	case errors.Is(err, tokens.ErrSourceUnavailable):
		return nil, nil, storage.WebSession{}, unavailable(tokens.Reason(err), err)
	case err != nil:
		if sw, ok := g.Sessions.(SessionWriter); ok && session.ID != "" {
			dctx, cancel := storage.Detach(ctx)
			if derr := sw.DeleteWebSession(dctx, session.ID); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
				g.logger().WarnContext(ctx, "refresh: ending the browser session failed", "session_id", session.ID, "error", derr)
			} else if derr == nil {
				g.logger().InfoContext(ctx, "web session ended", "session_id", session.ID, "reason", "idle, expired or its sign-in method no longer configured, at a refresh of a family bound to it")
			}
			cancel()
		}
		return nil, nil, storage.WebSession{}, invalidGrant(tokens.Reason(err), err)
	}
	if c.PATID != "" || c.PATGeneration != "" || c.DerivesFurther() { // begun from a PAT, or a delegation
		if g.Sources == nil {
			return nil, nil, storage.WebSession{}, unavailable("source_unavailable", errors.New("no source checker to re-check the family's PAT"))
		}
		// Judged with the scopes this refresh issues, not the family's:
		// asking for what the PAT or client still allows works, as for
		// the pool (withinPool; docs/security.md ).
		c.Scope = joinSpace(scopes)
		switch err := g.Sources.CheckSource(ctx, &c.AccessClaims); {
		case errors.Is(err, tokens.ErrSourceUnavailable):
			return nil, nil, storage.WebSession{}, unavailable(tokens.Reason(err), err)
		case err != nil:
			return nil, nil, storage.WebSession{}, invalidGrant(tokens.Reason(err), err)
		}
	}
	return pool, principal, session, nil
}
