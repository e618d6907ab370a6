package grants

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// Defaults of TokenExchange (docs/design.md#limits).
const (
	DefaultLifetime           = 15 * time.Minute
	DefaultMaxLifetime        = 12 * time.Hour
	DefaultMaxDelegationDepth = 5
	DefaultPATMaxLifetime     = time.Hour
)

// maxSourceJTIs bounds src_jti, the tokens of ours a token was exchanged
// from: a longer chain is refused rather than cut, since a link dropped
// would be a revocation that no longer reaches (docs/security.md A-36).
const maxSourceJTIs = 16

// TokenExchange is the RFC 8693 grant. Fill the exported fields; it is
// safe for concurrent use.
type TokenExchange struct {
	Trust      *trust.Registry
	Federation *federation.Verifier
	// Tokens verifies our own access tokens (subject or actor
	// …:access_token).
	Tokens *tokens.Verifier
	Issuer *tokens.Issuer
	// DefaultAudience is the aud of issued tokens when the request names
	// none (usually the issuer URL); required.
	DefaultAudience string
	// Audiences are further audience/resource values that may be
	// requested. Anything else is invalid_target (docs/security.md T-49); the
	// pool's condition may narrow further through request.audience.
	Audiences []string
	// SelfExchange enables …:access_token subject tokens (our own), which
	// may only narrow (docs/security.md T-54: off unless enabled).
	SelfExchange bool
	// Refresh issues refresh tokens for offline_access; nil refuses it.
	Refresh *Refresh
	// Principals resolves a pool's principal binding (nil refuses bound
	// pools): the issued token's sub is that principal and its principal
	// claim the principal's kind, as in every other token we issue.
	Principals storage.PrincipalStore
	// PrincipalCache, when set, serves an enabled bound principal from the
	// per-node record cache (as for client_credentials), so bound pools
	// cost no storage read per exchange.
	PrincipalCache PrincipalCache
	// Replay records the subject tokens of one-time-use providers as
	// spent, shared by every replica (docs/security.md T-48); nil fails such
	// exchanges closed (F-16).
	Replay storage.ReplayStore
	// PATs authenticates personal access tokens presented as
	// subject_token_type oauth2.TokenTypePAT; nil refuses them.
	PATs PATAuthenticator
	// PATMaxLifetime caps tokens exchanged from a PAT (DefaultPATMaxLifetime
	// when zero): they are checked against their PAT on every use, but a
	// short token also bounds what a stolen one is worth.
	PATMaxLifetime time.Duration
	// DefaultLifetime (15 min) applies when no lifetime is requested;
	// MaxLifetime (12 h) caps every pool.
	DefaultLifetime    time.Duration
	MaxLifetime        time.Duration
	MaxDelegationDepth int
	Now                func() time.Time
}

var _ Grant = (*TokenExchange)(nil)

// Type implements [Grant].
func (g *TokenExchange) Type() string { return oauth2.GrantTypeTokenExchange }

// ServerAudiences are the audiences the exchange allows through every
// pool besides the pool's own (see audience): DefaultAudience and
// Audiences. The refresh grant and the source checker are given them to
// judge a pool's tokens by the same rule (Refresh.Audiences,
// tokens.StoreSources.Audiences).
func (g *TokenExchange) ServerAudiences() []string {
	return append([]string{g.DefaultAudience}, g.Audiences...)
}

// ClientAuth implements [Grant]: the pool decides (AllowUnauthenticated).
func (g *TokenExchange) ClientAuth() ClientAuthPolicy { return ClientAuthPerPool }

// paysWithPool: the rate limits owed are charged with the subject's pool
// (external), or before the subject token is verified (own, pat).
func (g *TokenExchange) paysWithPool() {}

// judgesNamedPool: namedPool binds the subject to a named pool.
func (g *TokenExchange) judgesNamedPool() {}

func (g *TokenExchange) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Exchange implements [Grant] in octo-sts order (docs/design.md#trust-decisions-and-errors): bounded
// input → subject token by type → pool and provider → CEL condition →
// mapping → actor → audience/resource, scope, boundary, lifetime → mint.
// Every step fails closed.
func (g *TokenExchange) Exchange(ctx context.Context, req *Request, client *storage.Client) (*Response, error) {
	// 1. Parameters (RFC 8693 §2.1).
	if err := subjectParams(req); err != nil {
		return nil, err
	}
	// The actor's type is a parameter, checked before any token is: an
	// error naming it, not a refused token, which the Google dialect would
	// answer as invalid_grant (docs/security.md T-51, T-118).
	if (req.ActorToken == "") != (req.ActorTokenType == "") {
		return nil, badRequest(ReasonActorTypeMismatch, errors.New("actor_token and actor_token_type go together"))
	}
	if req.ActorTokenType != "" && !actorType(req.ActorTokenType) {
		return nil, badRequest(ReasonActorTypeUnsupported, fmt.Errorf("actor_token_type %q is not supported", trunc(req.ActorTokenType)))
	}
	issuedType, err := issuedTokenType(req)
	if err != nil {
		return nil, err
	}
	req.trace.tokenDigest = federation.TokenDigest(req.SubjectToken)

	// 2–4. Subject token by type, pool, condition and mapping.
	var subj *subject
	switch req.SubjectTokenType {
	case oauth2.TokenTypeJWT, oauth2.TokenTypeIDToken:
		subj, err = g.external(ctx, req, req.SubjectToken, client, nil)
	case oauth2.TokenTypeAccessToken:
		if !g.SelfExchange { // docs/security.md T-54
			return nil, badSubject(ReasonSelfExchangeDisabled, errors.New("exchanging our own tokens is disabled"))
		}
		subj, err = g.own(ctx, req, req.SubjectToken, client, true)
	case oauth2.TokenTypePAT:
		subj, err = g.pat(ctx, req, req.SubjectToken, client)
	default: // docs/security.md T-52
		// A parameter error, named as such: not a refused token, which
		// the Google dialect would answer as invalid_grant.
		return nil, badRequest(ReasonSubjectTypeUnsupported, fmt.Errorf("subject_token_type %q is not supported", trunc(req.SubjectTokenType)))
	}
	if err != nil {
		return nil, err
	}
	if err := namedPool(req, subj); err != nil {
		return nil, err
	}

	// 5. Actor (RFC 8693 §2.1, §4.1, §4.4), judged like a subject token:
	//    its pool's client policy, and spent when one-time-use.
	act, actor, err := g.actor(ctx, req, subj, client)
	if err != nil {
		return nil, err
	}
	srcJTIs, err := sourceJTIs(subj, actor)
	if err != nil {
		return nil, err
	}

	// 6. What may be issued: targets, scope, boundary, lifetime.
	now := g.now().Truncate(time.Second)
	c := tokens.AccessClaims{
		Subject: subj.sub, OrgID: subj.org, Principal: subj.principal, ClientID: subj.clientID,
		Act: act, MayAct: subj.mayAct, Pool: subj.pool, Provider: subj.provider, Attributes: subj.attributes, Src: subj.src,
		PATID: subj.patID, PATGeneration: subj.patGen, GrantID: subj.grantID, SourceJTIs: srcJTIs, SourceKeyIDs: sourceKeyIDs(subj, actor),
		IssuedAt: tokens.NewNumericDate(now), NotBefore: tokens.NewNumericDate(now),
	}
	if client != nil {
		c.ClientID = client.ID
	}
	c.SourceClientIDs = sourceClients(c.ClientID, subj, actor)
	if err := setFurtherSources(&c, subj, actor); err != nil {
		return nil, err
	}
	if c.Audience, err = g.audience(req, subj); err != nil {
		return nil, err
	}
	scopes, err := grantScope(req, subj, client)
	if err != nil {
		return nil, err
	}
	c.Scope = joinSpace(scopes)
	offline := slices.Contains(scopes, ScopeOfflineAccess)
	// The one client check, on what is about to be issued (every grant
	// and dialect runs it; docs/api.md "Clients").
	if err := CheckClient(client, Issuance{Grant: req.GrantType, OrgID: subj.org, Pool: subj.poolRec,
		Scopes: scopes, Audiences: c.Audience, Refresh: offline, Anonymous: subj.poolRec == nil}); err != nil {
		return nil, err
	}
	if c.CAB, err = boundary(req, subj); err != nil {
		return nil, err
	}
	life, err := g.lifetime(req, subj, actor, now)
	if err != nil {
		return nil, err
	}
	c.Expiry = tokens.NewNumericDate(now.Add(life))

	// A refresh token needs an authenticated client (step 9); refused
	// here, before a one-time token is spent in step 8.
	if offline && (client == nil || g.Refresh == nil) {
		return nil, refuse(oauth2.ErrorInvalidScope, descScope, ReasonRefreshNeedsClient,
			errors.New("offline_access needs an authenticated client"))
	}
	// A one-time token already spent is refused with one read, before
	// anything is signed or written: a replay commits no event and stores
	// no family (docs/security.md T-134). Step 8 spends it.
	for _, t := range []*subject{subj, actor} {
		if t != nil && t.spendKey != "" {
			if err := g.unspent(ctx, t, t == subj); err != nil {
				return nil, err
			}
		}
	}

	// 7. Mint (RFC 9068 access token; for …:jwt the same JWT). With
	//    offline_access the token belongs to the family begun in step 9
	//    (grant_id). A subject of another family names that one in
	//    src_grant: revoking either ends the token and what the new family
	//    mints, and revoking the new one leaves the first alone
	//    (docs/design.md#refresh-rotation, docs/security.md T-221).
	family := ""
	if offline {
		family = storage.NewID()
		if c.GrantID != "" && !slices.Contains(c.SourceGrants, c.GrantID) {
			if len(c.SourceGrants) >= maxSourceJTIs {
				return nil, refuse(oauth2.ErrorInvalidRequest, descSubject, ReasonDerivationTooDeep,
					fmt.Errorf("derived from %d refresh-token families, at most %d", len(c.SourceGrants)+1, maxSourceJTIs))
			}
			c.SourceGrants = append(slices.Clip(c.SourceGrants), c.GrantID)
		}
		c.GrantID = family
	}
	tok, c, err := g.Issuer.MintAccessToken(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	if len(tok) > tokens.MaxTokenSize {
		// A boundary this request asked for (options.accessBoundary)
		// that alone takes the token over is the request's fault, not
		// the subject token's: it was invalid_grant "subject_token
		// rejected" at /v1/token, so a user of Google's downscope client
		// was sent to fix a root token that is fine (docs/security.md
		// T-199).
		if n := boundaryShare(c.CAB, tok); req.Boundary != nil && n > 0 && len(tok)-n <= tokens.MaxTokenSize {
			return nil, badRequest(ReasonBoundaryInvalid, fmt.Errorf("options: the accessBoundary makes the issued token %d bytes, over the %d our verifier accepts: use fewer or shorter rules",
				len(tok), tokens.MaxTokenSize))
		}
		// What the subject token carries (act, may_act, mapped
		// attributes) within the size we accept can still make a token
		// our own verifier refuses: refused here, not issued unusable
		// (docs/security.md T-166). Nothing is spent or stored yet.
		return nil, badSubject(ReasonIssuedTokenTooLarge,
			fmt.Errorf("the issued token would be %d bytes, over the %d our verifier accepts", len(tok), tokens.MaxTokenSize))
	}
	req.trace.jti = c.ID
	resp := &Response{AccessToken: tok, IssuedTokenType: issuedType, TokenType: oauth2.TokenTypeBearer, ExpiresIn: int64(life / time.Second)}
	if req.Scopes == nil || joinSpace(req.Scopes) != c.Scope {
		resp.Scope = c.Scope // RFC 8693 §2.2.1: required when it differs
	}

	// 8. With audit.mode required, the issuance's event is committed
	//    before a one-time token is spent (step 10): what fails for a
	//    while (the signing, the audit commit, storing the family) leaves
	//    the token for the retry (docs/security.md T-134).
	oneTime := subj.spendKey != "" || (actor != nil && actor.spendKey != "")
	if oneTime {
		if err := req.commitIssued(ctx); err != nil {
			return nil, err
		}
	}

	// 9. A refresh token when offline_access was granted (the pool's scope
	//    ceiling must include it). It is bound to the authenticated client
	//    and its family ends when the subject token, or the actor token of
	//    a delegation, expires: an issued token never outlives the tokens
	//    it was exchanged from (docs/design.md#lifetimes).
	var until time.Time // the family's end, when one is begun
	if offline {
		until = subj.exp
		if actor != nil && !actor.exp.IsZero() && actor.exp.Before(until) {
			until = actor.exp
		}
		sources := []time.Time{subj.iat}
		if actor != nil {
			sources = append(sources, actor.iat)
		}
		rt, err := g.Refresh.issueFamily(ctx, family, req.GrantType, client, c, scopes, []string(c.Audience), until, sources...)
		if err != nil {
			if e, ok := errors.AsType[*oauth2.Error](err); ok {
				return nil, e // revoked meanwhile (docs/security.md T-160)
			}
			// Storage could not begin the family: 503, retried, as
			// the code grant's (docs/security.md "Conventions").
			return nil, unavailable("storage_unavailable", err)
		}
		resp.RefreshToken = rt
	}

	// 10. A one-time subject (or actor) token is spent last, once every
	//    check has passed and everything else is done: a refused or failed
	//    exchange spends nothing, and a second use is refused on every
	//    replica (docs/security.md T-48, F-16). A replay was refused with
	//    one read before step 7 and stored nothing; one that lost a race to
	//    that read fails here: its token is withheld, the request's event
	//    names its jti, and the family it stored, never handed out, is
	//    ended (docs/security.md T-134).
	if oneTime {
		for _, t := range []*subject{subj, actor} {
			if t != nil && t.spendKey != "" {
				if err := g.spend(ctx, t, t == subj); err != nil {
					if offline {
						g.Refresh.endUnsent(ctx, family, storage.Now(g.now()), until)
					}
					return nil, err
				}
			}
		}
	}
	return resp, nil
}

// maxJTILen bounds the jti of a one-time token (it becomes a storage key).
const maxJTILen = 256

// spendKey is the used-token key of a one-time subject token: namespaced
// by issuer, so two issuers' jti values never collide (F-16). A jti with
// a NUL character is no usable one: no stored text holds it (PostgreSQL
// refuses it), so it could never be spent, and the store's refusal would
// read as a storage failure, a 503 retried for ever (docs/security.md
// T-234).
func spendKey(id *federation.Identity) (string, error) {
	if id.JTI == "" || len(id.JTI) > maxJTILen || strings.IndexByte(id.JTI, 0) >= 0 || !utf8.ValidString(id.JTI) {
		return "", badSubject(ReasonSubjectJTIMissing, errors.New("one-time-use provider: token without a usable jti"))
	}
	return "subject_token:" + id.Issuer + " " + id.JTI, nil
}

// spend marks subj's token used until its exp plus leeway (it could be
// accepted until then), failing closed when the store cannot say. A token
// that may have been presented before a restore (its iat less the leeway
// is before it) is refused as a replay: the record of its use may have
// gone with the replaced database (docs/security.md F-62).
func (g *TokenExchange) spend(ctx context.Context, subj *subject, isSubject bool) error {
	if g.Replay == nil {
		return unavailable(ReasonReplayUnavailable, errors.New("no replay store for a one-time-use provider"))
	}
	leeway := cmp.Or(g.Federation.Leeway, federation.DefaultLeeway)
	switch err := g.Replay.MarkUsed(ctx, subj.spendKey, subj.iat.Add(-leeway), subj.exp.Add(leeway)); {
	case errors.Is(err, storage.ErrAlreadyExists):
		return tokenError(isSubject, ReasonSubjectReplayed, errors.New("one-time token already exchanged"))
	case err != nil:
		return unavailable(ReasonReplayUnavailable, err)
	}
	return nil
}

// unspent refuses subj's token as a replay when it is recorded used, or
// was presented before a restore (as spend would), failing closed when the
// store cannot say. It writes nothing: spend decides between concurrent
// uses.
func (g *TokenExchange) unspent(ctx context.Context, subj *subject, isSubject bool) error {
	if g.Replay == nil {
		return unavailable(ReasonReplayUnavailable, errors.New("no replay store for a one-time-use provider"))
	}
	leeway := cmp.Or(g.Federation.Leeway, federation.DefaultLeeway)
	switch used, err := g.Replay.Used(ctx, subj.spendKey, subj.iat.Add(-leeway)); {
	case err != nil:
		return unavailable(ReasonReplayUnavailable, err)
	case used:
		return tokenError(isSubject, ReasonSubjectReplayed, errors.New("one-time token already exchanged"))
	}
	return nil
}

// sourceJTIs is the src_jti of a token exchanged from subj, and from actor
// in a delegation: the jti of each of our tokens it comes from, with the
// ones those came from, so that revoking any of them ends it
// (docs/security.md A-36). A chain longer than maxSourceJTIs is refused.
func sourceJTIs(subj, actor *subject) ([]string, error) {
	l := subj.srcJTIs
	if actor != nil {
		for _, j := range actor.srcJTIs {
			if !slices.Contains(l, j) {
				l = append(slices.Clip(l), j)
			}
		}
	}
	if len(l) > maxSourceJTIs {
		return nil, refuse(oauth2.ErrorInvalidRequest, descSubject, ReasonDerivationTooDeep,
			fmt.Errorf("exchanged from %d tokens of ours, at most %d", len(l), maxSourceJTIs))
	}
	return l, nil
}

// sourceKeyIDs is the src_kid of a token exchanged from subj, and from
// actor in a delegation: the key of each of our tokens it comes from, each
// once, so that revoking any of them ends it as it ends those tokens
// (docs/security.md T-192). No longer than src_jti, whose tokens they
// signed, so bounded with it.
func sourceKeyIDs(subj, actor *subject) []string {
	l := subj.srcKIDs
	if actor != nil {
		for _, k := range actor.srcKIDs {
			if !slices.Contains(l, k) {
				l = append(slices.Clip(l), k)
			}
		}
	}
	return l
}

// furtherSources are a token's src_sub, src_pat, src_pool and src_grant.
type furtherSources struct{ subs, pats, pools, grants []string }

// setFurtherSources sets c's src_sub, src_pat, src_pool and src_grant:
// what the tokens c is exchanged from derive from beyond what c names
// itself (its sub, pat_id, pool and grant_id, taken from subj). Above all
// the actor of a delegation, whose principal, PAT, pool and family are
// not the subject's: c ends with any of them as the actor token does
// (docs/security.md A-46). A list longer than maxSourceJTIs is refused.
func setFurtherSources(c *tokens.AccessClaims, subj, actor *subject) error {
	ownPAT, ownPool := "", ""
	if c.PATID != "" {
		ownPAT = tokens.SourcePAT(c.PATID, c.PATGeneration, "")
	}
	if c.Pool != "" {
		ownPool = tokens.SourcePool(c.Pool, c.Provider)
	}
	add := func(l []string, own string, vs ...string) []string {
		for _, v := range vs {
			if v != "" && v != own && !slices.Contains(l, v) {
				l = append(l, v)
			}
		}
		return l
	}
	var f furtherSources
	for _, t := range []*subject{subj, actor} {
		if t == nil {
			continue
		}
		if t == actor {
			if storage.PrincipalKind(t.principal).Valid() {
				f.subs = add(f.subs, c.Subject, t.sub)
			}
			if t.patID != "" {
				// With the actor token's scope: c ends when the actor's
				// PAT no longer holds it, as the actor token does (A-35,
				// docs/security.md A-67).
				f.pats = add(f.pats, ownPAT, tokens.SourcePAT(t.patID, t.patGen, strings.Join(t.scopes, " ")))
			}
			if t.pool != "" {
				f.pools = add(f.pools, ownPool, tokens.SourcePool(t.pool, t.provider))
			}
			f.grants = add(f.grants, c.GrantID, t.grantID)
		}
		f.subs = add(f.subs, c.Subject, t.further.subs...)
		f.pats = add(f.pats, ownPAT, t.further.pats...)
		f.pools = add(f.pools, ownPool, t.further.pools...)
		f.grants = add(f.grants, c.GrantID, t.further.grants...)
	}
	if n := max(len(f.subs), len(f.pats), len(f.pools), len(f.grants)); n > maxSourceJTIs {
		return refuse(oauth2.ErrorInvalidRequest, descSubject, ReasonDerivationTooDeep,
			fmt.Errorf("derived from %d sources of one kind, at most %d", n, maxSourceJTIs))
	}
	c.SourceSubjects, c.SourcePATs, c.SourcePools, c.SourceGrants = f.subs, f.pats, f.pools, f.grants
	return nil
}

// sourceClients is the src_client_id of a token issued to client id own
// and exchanged from subj (and actor): the registered clients of the
// tokens of ours it comes from other than own, so that it ends with each
// of them as it ends with its own client (docs/security.md A-33), and
// what an actor token of ours drew from its client and pool (drew).
func sourceClients(own string, subj, actor *subject) []string {
	var l []string
	add := func(ids ...string) {
		for _, id := range ids {
			if id != own && !slices.Contains(l, id) {
				l = append(l, id)
			}
		}
	}
	add(subj.srcClients...)
	// What a subject token of ours drew from its client and pool, as for
	// an actor: the token re-exchanged from it must end when it does
	// (docs/security.md A-101), not only once that client is gone.
	add(drew(subj)...)
	if actor != nil {
		add(actor.srcClients...)
		add(drew(actor)...)
	}
	return l
}

// drew names, for a subject or actor token of ours, what it drew from its
// client and pool: the client's ID with the token's scope, pool and
// audiences, and the pool's client_id (tokens.PoolClientID) with its
// scope (tokens.SourceClient), so that the token exchanged from it ends
// once the client no longer lists that scope, pool or audience, or the
// pool no longer grants that scope, as the token itself does
// (docs/security.md A-93 for an actor, A-101 and A-102 for a subject),
// not only once they are gone (the bare client ID and src_pool entry). A
// re-exchanged token is judged against its own client's lists and holds
// at most its subject's scope and audiences, so without the entry what
// was taken from the first client ended the first token and not the
// second. The encoding is an exchange token's creator's, in
// src_client_id: a node of an earlier version skips an entry that is no
// registered client. An external token drew nothing of ours: its pool's
// ceiling is not what it holds.
func drew(s *subject) []string {
	if !s.own {
		return nil
	}
	scope := strings.Join(s.scopes, " ")
	var l []string
	if storage.IsUUID(s.clientID) {
		if e := tokens.SourceClient(s.clientID, scope, s.pool, s.audiences); e != s.clientID {
			l = append(l, e)
		}
	}
	if s.pool != "" && scope != "" {
		l = append(l, tokens.SourceClient(tokens.PoolClientID(s.pool, s.provider), scope, "", nil))
	}
	return l
}

// namedPool refuses a subject token that a pool named by the request
// (identity_pool_id, pool, Google's audience) did not admit: one of our
// tokens exchanged through another pool or provider, or a PAT, which
// belongs to none, is never re-issued as if the named pool had judged it
// (docs/security.md T-113). An external token was selected at that pool.
func namedPool(req *Request, subj *subject) error {
	if req.PoolID == "" {
		return nil
	}
	if subj.pool != req.PoolID || (req.ProviderID != "" && subj.provider != req.ProviderID) {
		return badSubject(ReasonSubjectPoolMismatch, errors.New("the subject token was not exchanged through the named pool"))
	}
	return nil
}

// subjectParams refuses a request without subject_token or
// subject_token_type (RFC 8693 §2.1), naming the one it left out: the
// description begins with that parameter, which Confluent's
// source.parameter names (docs/security.md T-231).
func subjectParams(req *Request) error {
	switch {
	case req.SubjectToken == "" && req.SubjectTokenType == "":
		return badRequest(ReasonParameterMissing, errors.New("subject_token and subject_token_type are required"))
	case req.SubjectToken == "":
		return badRequest(ReasonParameterMissing, errors.New("subject_token is required"))
	case req.SubjectTokenType == "":
		return badRequest(ReasonParameterMissing, errors.New("subject_token_type is required"))
	}
	return nil
}

// issuedTokenType is the issued_token_type answering req's
// requested_token_type, the same for every grant that mints an access
// token from a request that may name one (token exchange, jwt-bearer,
// refresh_token, client_credentials, authorization_code). Either type is the same JWT access token, which our
// resource servers take as a bearer token: token_type is Bearer for both,
// N_A being for what is not usable as an access token (RFC 8693 §2.2.1;
// docs/api.md "Confluent STS dialect"). Any other type is refused
// (docs/security.md T-53).
func issuedTokenType(req *Request) (string, error) {
	switch req.RequestedTokenType {
	case "", oauth2.TokenTypeAccessToken:
		return oauth2.TokenTypeAccessToken, nil
	case oauth2.TokenTypeJWT:
		return oauth2.TokenTypeJWT, nil
	}
	return "", badRequest(ReasonRequestedTypeUnsupp, fmt.Errorf("requested_token_type %q is not supported", trunc(req.RequestedTokenType)))
}

// boundaryShare is what the Credential Access Boundary cab adds to the
// issued token tok, to the byte: the payload's "cab" member (its name,
// the separators around it and its JSON, as the claims encode it) taken
// out of the payload before base64url; 0 without one (docs/security.md
// T-199).
func boundaryShare(cab map[string]any, tok string) int {
	if cab == nil {
		return 0
	}
	b, err := json.Marshal(cab)
	if err != nil {
		return 0
	}
	i := strings.IndexByte(tok, '.')
	j := strings.IndexByte(tok[i+1:], '.')
	if i < 0 || j < 0 {
		return 0
	}
	enc := base64.RawURLEncoding
	payload := enc.DecodedLen(j)
	member := len(`,"cab":`) + len(b)
	if member > payload {
		return 0
	}
	return j - enc.EncodedLen(payload-member)
}
