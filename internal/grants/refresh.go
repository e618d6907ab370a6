package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// Defaults of Refresh.
const (
	DefaultRefreshLifetime = 30 * 24 * time.Hour
	DefaultRefreshGrace    = 10 * time.Minute
)

// ReasonFamilyUnsent is the reason of the grant: row that ends a refresh
// family whose beginning failed after it was stored (endUnsent).
const ReasonFamilyUnsent = "refresh_family_unsent"

// Refresh is the RFC 6749 §6 grant over opaque, digest-only refresh
// tokens. Every use at /oauth2/token rotates the token (at Google's
// /v1/oauthtoken it stays, see rotates), in one transaction with storing
// its successor; presenting a rotated token again revokes its whole family
// (RFC 9700 §4.14.2), except while the successor is unused and within
// Grace of the rotation, when the same successor is returned so a lost
// response (even across a restart or failover) does not strand the client
// (docs/design.md, "Refresh rotation").
//
// The successor's secret is derived, not stored: HMAC(successorKey,
// parent secret) through [secret.Prefix.Derive]. Only someone who holds
// the parent secret and the server key can compute it, so a database dump
// (even with the pepper's digests) yields no usable token, and no sealed
// copy has to be kept and expired. Outside Grace the derivation is
// never used: the parent is then a reuse.
type Refresh struct {
	Store RefreshStore
	// RevocationKeep is how long the row that ends a revoked family's
	// access tokens is kept: the longest any token lives plus the leeway
	// (tokens.RevocationKeep; zero: the default configuration's).
	RevocationKeep time.Duration
	Issuer         *tokens.Issuer
	// Pepper keys digests; the successor key is derived from it.
	Pepper []byte
	// AccessLifetime of access tokens (15 min when zero); MaxLifetime
	// caps it (keys.max_token_lifetime; DefaultMaxLifetime when zero), so
	// a configured maximum below the default shortens every access token
	// (docs/design.md#lifetimes); Lifetime of a family (30 days when
	// zero); Grace, the longest a rotation whose successor is still unused
	// can be retried (DefaultRefreshGrace when zero).
	AccessLifetime time.Duration
	MaxLifetime    time.Duration
	Lifetime       time.Duration
	Grace          time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
	// Trust re-checks the family's pool and provider on every refresh;
	// nil refuses families that come from a pool (fail closed).
	Trust *trust.Registry
	// Audiences are the audiences token exchange allows through every
	// pool besides the pool's own (its DefaultAudience and Audiences): a
	// family of a pool keeps an audience while one of the two lists it
	// (docs/security.md A-61); nil allows the pool's own only.
	Audiences []string
	// Sessions judges a family bound to the browser session it was begun
	// in (the authorization_code grant without offline_access): it
	// refreshes only while that session, or one of the same person that
	// replaced it, lives (docs/security.md ).
	// nil refuses such families (fail closed). When it is also a
	// [SessionWriter], a refresh is the session's activity: a
	// session found idle or expired is ended, and a successful refresh
	// records its use, at most once a [storage.WebSessionTouchEvery].
	Sessions tokens.SessionReader
	// SessionBounds are the browser sessions' timeouts as configured now
	// (web.session.*), by which such a family's session is judged
	// (tokens.CheckFamilySession; docs/security.md ).
	SessionBounds tokens.SessionBounds
	// Principals re-checks the family's principal (a pool's bound
	// principal, a PAT's owner) on every refresh; nil refuses families
	// that act as a principal.
	Principals storage.PrincipalStore
	// Sources re-checks a family begun from a personal access token: once
	// the PAT is deleted or regenerated the family mints nothing more. nil
	// refuses such families (fail closed).
	Sources tokens.SourceChecker
	// MaxDelegationDepth is the longest delegation chain (act) a family's
	// access tokens carry, the exchange's (TokenExchange.MaxDelegationDepth;
	// DefaultMaxDelegationDepth when zero): a family begun with a longer
	// one, before the cap was lowered, mints nothing until it is raised
	// again (docs/security.md T-166).
	MaxDelegationDepth int
	// IDTokens picks the issuer of the ID tokens the refreshes of an
	// authorization_code family with the openid scope answer, as
	// AuthorizationCode.IDTokens does (id_tokens.rs256_audiences); nil:
	// Issuer.
	IDTokens func(aud []string) *tokens.Issuer
}

var _ Grant = (*Refresh)(nil)

// RefreshStore is what the refresh_token grant reads and writes: the
// families, and the revocation that ends a reused family's access tokens
// (tokens.GrantRevocation).
type RefreshStore interface {
	storage.RefreshTokenStore
	storage.RevocationStore
}

// Type implements [Grant].
func (g *Refresh) Type() string { return oauth2.GrantTypeRefreshToken }

// judgesNamedPool: a family is refreshed only under its own pool.
func (g *Refresh) judgesNamedPool() {}

// ClientAuth implements [Grant]: refresh tokens are bound to their client.
func (g *Refresh) ClientAuth() ClientAuthPolicy { return ClientAuthRequired }

// Issue starts a family begun by grant (the grant type the client used,
// which it must keep holding for the family to refresh, docs/security.md
// it stores a new refresh token for client carrying claims (the
// template of every access token it will mint: sub, org, principal, pool,
// provider, act, src, cab) and returns its secret, shown once. An empty
// grant is refused: every family records the grant that began it.
func (g *Refresh) Issue(ctx context.Context, grant string, client *storage.Client, claims tokens.AccessClaims, scopes, audiences []string) (string, error) {
	return g.IssueUntil(ctx, grant, client, claims, scopes, audiences, time.Time{})
}

// IssueUntil is Issue with the family ending no later than notAfter (zero:
// only the family lifetime applies).
func (g *Refresh) IssueUntil(ctx context.Context, grant string, client *storage.Client, claims tokens.AccessClaims, scopes, audiences []string, notAfter time.Time) (string, error) {
	if grant == "" {
		return "", errors.New("grants: a refresh family needs the grant that began it")
	}
	return g.issueFamily(ctx, storage.NewID(), grant, client, claims, scopes, audiences, notAfter)
}

// issueFamily is IssueUntil with the family's ID chosen by the caller, and
// the grant type that begins it (grant, recorded in its template: the
// client must keep holding it, docs/security.md A-98; "" records none,
// as a family stored before it was recorded, which only tests make): the
// authorization_code grant records it on the code before issuing, so a
// second use of the code can revoke the family (RFC 6749 §10.5). sources
// are the iat of the tokens the family is exchanged from: the template
// records the earliest, against which the rows of what they derive from
// are judged (tokens.FamilySourceRevoked, docs/security.md A-66).
func (g *Refresh) issueFamily(ctx context.Context, id, grant string, client *storage.Client, claims tokens.AccessClaims, scopes, audiences []string, notAfter time.Time, sources ...time.Time) (string, error) {
	return g.beginFamily(ctx, id, grant, client, claims, time.Time{}, "", scopes, audiences, notAfter, sources...)
}

// beginFamily is issueFamily recording authTime, when the person signed
// in (the authorization_code grant's; zero when unknown), in the family's
// template: its refreshes' ID tokens carry it (OIDC Core §12.2); and
// lineage, that of the browser session the family is bound to ("" for
// none): it refreshes only while a session of its person with that
// lineage lives (docs/security.md ).
func (g *Refresh) beginFamily(ctx context.Context, id, grant string, client *storage.Client, claims tokens.AccessClaims, authTime time.Time,
	lineage string, scopes, audiences []string, notAfter time.Time, sources ...time.Time,
) (string, error) {
	if client == nil {
		return "", errors.New("grants: refresh token without a client")
	}
	raw := secret.PrefixRefreshToken.Generate()
	now := storage.Now(nowOf(g.Now))
	exp := now.Add(cmpOr(g.Lifetime, DefaultRefreshLifetime))
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	tmpl := tokens.NewFamilyTemplate(claims, now, sources...)
	tmpl.AuthTime, tmpl.Grant, tmpl.SessionLineage = authTime, grant, lineage
	rt, err := g.record(tmpl, scopes, audiences, raw)
	if err != nil {
		return "", err
	}
	rt.ID, rt.ClientID, rt.ExpiresAt = id, client.ID, storage.Now(exp)
	rt.FamilyID = rt.ID
	if err := g.Store.CreateRefreshToken(ctx, rt); err != nil {
		// The INSERT may have committed with its answer lost (a timeout,
		// a dropped connection): whatever fails from here on, the family
		// nobody is sent is ended, not left live until it expires.
		g.endUnsent(ctx, rt.FamilyID, now, rt.ExpiresAt)
		return "", fmt.Errorf("grants: store refresh token: %w", err)
	}
	// The caller checked the revocation rows before minting; a subject
	// revocation or a consent withdrawal may have run since, its UPDATE
	// too early to see this family. Such a revocation writes its row
	// before its UPDATE, so reading the rows again now that the family is
	// stored finds it whenever the UPDATE missed the family (one of the
	// two always sees the other), read from storage, not from this
	// node's view, which may lag another process's rows (docs/security.md
	// T-160). The family, never handed out, is then ended.
	tmpl.Subject, tmpl.ClientID = rt.Subject, rt.ClientID
	switch revoked, err := tokens.FamilySourceRevoked(ctx, storedRevocations(g.Store), &tmpl, rt.FamilyID, rt.CreatedAt); {
	case err != nil:
		g.endUnsent(ctx, rt.FamilyID, now, rt.ExpiresAt)
		return "", fmt.Errorf("grants: revocation check: %w", err)
	case revoked:
		g.endUnsent(ctx, rt.FamilyID, now, rt.ExpiresAt)
		return "", refuse(oauth2.ErrorInvalidGrant, descRevokedWhileIssued, tokens.Reason(tokens.ErrRevoked), errors.New("revoked while the refresh family was being begun"))
	}
	return raw, nil
}

// endUnsent ends family, stored (or perhaps stored) by a beginning that
// then failed: its refresh token is never handed out, and a row left live
// would stand as the person's and client's grant until it expired. As
// tokens.EndFamily does, its grant: row comes first, here kept until the
// family expires: an INSERT that commits after the UPDATE of its flags
// (pgx cancels a query asynchronously) is judged against that row
// whatever its flag says (docs/security.md T-160). Detached, so a request
// whose deadline ended the beginning still ends it; best effort: a
// failure is logged (the token is known to nobody).
func (g *Refresh) endUnsent(ctx context.Context, family string, now, expires time.Time) {
	dctx, cancel := storage.Detach(ctx)
	defer cancel()
	rerr := g.Store.PutRevocation(dctx, tokens.FamilyRevocation(family, ReasonFamilyUnsent, now, expires, g.RevocationKeep))
	_, err := g.Store.RevokeRefreshFamily(dctx, family)
	if err := errors.Join(rerr, err); err != nil {
		g.logger().WarnContext(ctx, "ending an unsent refresh family failed", "family", family, "err", err)
	}
}

// RevocationReader is implemented by a store that answers GetRevocations
// from a view (internal/storage/cache): ReadStoredRevocations reads
// storage itself.
type RevocationReader interface {
	ReadStoredRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error)
}

// storedRevocations is s whose GetRevocations reads storage, past any
// view.
func storedRevocations(s storage.RevocationStore) storage.RevocationStore {
	if r, ok := s.(RevocationReader); ok {
		return storedReader{s, r}
	}
	return s
}

type storedReader struct {
	storage.RevocationStore
	r RevocationReader
}

func (s storedReader) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	return s.r.ReadStoredRevocations(ctx, ids...)
}

// record builds the first refresh-token row of a family begun at
// t.Begun (without IDs, client and expiry); its successors copy the
// template.
func (g *Refresh) record(t tokens.FamilyTemplate, scopes, audiences []string, raw string) (storage.RefreshToken, error) {
	c := &t.AccessClaims
	c.ID, c.IssuedAt, c.NotBefore, c.Expiry, c.Scope, c.Audience = "", 0, 0, 0, "", nil
	b, err := json.Marshal(t)
	if err != nil {
		return storage.RefreshToken{}, err
	}
	return storage.RefreshToken{
		Digest: secret.Digest(g.Pepper, raw), OrgID: c.OrgID, Subject: c.Subject, PrincipalID: c.Principal,
		Scopes: scopes, Audiences: audiences, Claims: b, CreatedAt: t.Begun,
	}, nil
}

// successorSecret derives the secret of parent's successor (see Refresh).
func (g *Refresh) successorSecret(parentSecret string) string {
	return secret.PrefixRefreshToken.Derive(secret.SubKey(g.Pepper, "refresh successor"), parentSecret)
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// invalidGrant is RFC 6749 §5.2 invalid_grant with a generic description:
// unknown, expired, revoked, reused and foreign tokens look the same.
// descRevokedWhileIssued describes a grant (an authorization code, a
// token exchange) refused because a revocation covered the refresh family
// it was beginning (issueFamily; docs/security.md T-160).
const descRevokedWhileIssued = "authorization revoked while the token was being issued"

func invalidGrant(reason string, cause error) error {
	return refuse(oauth2.ErrorInvalidGrant, "refresh_token rejected", reason, cause)
}

// narrow checks that the requested scope only narrows the family's
// (RFC 6749 §6) and returns the access token's scope.
func narrow(requested, granted []string) ([]string, error) {
	if requested == nil {
		return granted, nil
	}
	for _, s := range requested {
		if !slices.Contains(granted, s) {
			return nil, refuse(oauth2.ErrorInvalidScope, descScope, ReasonScopeInvalid, fmt.Errorf("scope %q not granted", trunc(s)))
		}
	}
	return requested, nil
}

// narrowTarget returns the audience of the access token a refresh issues:
// the audience and resource values requested, each of which the family
// already covers (covered), or covered when none is. A refresh may narrow
// the token, never the family, whose next refresh without them gets all
// of covered again (RFC 8707 §2.2); a value it does not cover is
// invalid_target (docs/security.md T-183).
func narrowTarget(req *Request, covered []string) ([]string, error) {
	if len(req.Audiences)+len(req.Resources) == 0 {
		return covered, nil
	}
	var want []string
	for _, t := range slices.Concat(req.Audiences, req.Resources) {
		switch {
		case !slices.Contains(covered, t):
			return nil, refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceWidening, fmt.Errorf("audience %q is not one the grant covers", trunc(t)))
		case !slices.Contains(want, t):
			want = append(want, t)
		}
	}
	return want, nil
}
