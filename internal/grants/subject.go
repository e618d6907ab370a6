package grants

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// subject is a verified subject (or actor) token and the ceilings it
// imposes on what may be issued.
type subject struct {
	iss, rawSub         string // the verified token's own iss and sub
	sub, org, principal string // what the issued token asserts
	pool, provider      string
	clientID            string
	attributes          map[string]any
	src                 *tokens.Source
	patID, patGen       string // the PAT the subject derives from, if any
	grantID             string // the refresh-token family it was minted from, if any
	// srcJTIs: for one of our tokens, its own jti after those it was
	// exchanged from (src_jti); a token exchanged from it names them all.
	srcJTIs []string
	// srcKIDs: for one of our tokens, the keys that signed it and the
	// tokens it was exchanged from (src_kid), each once.
	srcKIDs []string
	// srcClients: for one of our tokens, the registered clients of it and
	// of the tokens it came from (src_client_id, then client_id).
	srcClients []string
	// further: for one of our tokens, what it derives from beyond its
	// own sources (src_sub, src_pat, src_pool, src_grant).
	further   furtherSources
	act       *tokens.Actor  // existing delegation chain (our tokens)
	mayAct    *tokens.MayAct // the may_act claim, when present
	exp       time.Time
	scopes    []string // ceiling
	audiences []string // ceiling; nil: the server's allowlist
	// poolAudiences are the pool's downstream audiences, allowed besides
	// the server's allowlist; googleScopes what Google's default scope
	// means in the pool (nil: the whole ceiling).
	poolAudiences, googleScopes []string
	maxLifetime                 time.Duration
	cab                         map[string]any
	own                         bool // our token: narrowing rules apply
	// apiScopes: the scopes are our API's (a PAT, or one of our tokens
	// naming a principal of ours), so "*" in them also admits each
	// scope of the API but sts:admin, as the API reads it (allows).
	apiScopes bool
	spendKey  string // one-time-use provider: the token's used-token key
	// iat is the token's iat: a one-time-use provider's token is refused
	// when it may predate a restore (F-62), and a family begun from the
	// token judges the rows of what it derives from against it.
	iat     time.Time
	poolRec *trust.Pool // the pool judged, for the client check; nil: none
}

// allows reports whether the subject's ceiling admits scope sc: one of
// its scopes as written, or, for our API's scopes, a scope of the API
// that "*" stands for (pat.Allows: every known scope but sts:admin).
// Narrowing a full-access credential to identity:read is then possible;
// a scope the API does not know is never in "*".
func (s *subject) allows(sc string) bool {
	if slices.Contains(s.scopes, sc) {
		return true
	}
	return s.apiScopes && pat.KnownScope(sc) && pat.Allows(s.scopes, sc)
}

// tokenError builds the refusal for a subject or actor token.
func tokenError(isSubject bool, reason string, cause error) *oauth2.Error {
	if isSubject {
		return badSubject(reason, cause)
	}
	return refuse(oauth2.ErrorInvalidRequest, descActor, reason, cause)
}

// external verifies a JWT from a pool's provider: select the pool (by
// name, or by the unverified iss/aud), rate-limit that pool (with the
// request's IP and client when still owed, in one call), check client
// authentication, verify the signature and claims, then evaluate the
// pool's CEL condition and mapping.
//
// of is nil for a subject token; for an actor token it is the subject
// the actor acts for, whose organization's pools alone are candidates (an
// actor acts within the subject's organization, docs/security.md A-89) and
// whose ceilings bound what the exchange issues.
func (g *TokenExchange) external(ctx context.Context, req *Request, raw string, client *storage.Client, of *subject) (*subject, error) {
	isSubject := of == nil
	sel := trust.Selector{}
	if isSubject {
		sel.PoolID, sel.ProviderID = req.PoolID, req.ProviderID
	}
	if client != nil {
		// Only the client's own organization's pools can serve it
		// (CheckClient), so only they are candidates (docs/security.md A-84).
		sel.OrgID = client.OrgID
	}
	if !isSubject {
		// Another organization's pool, which could claim any issuer with
		// keys of its own, neither serves an actor nor makes its
		// selection ambiguous (docs/security.md A-89).
		sel.OrgID = of.org
	}
	var tok *federation.Token
	if sel.ProviderID == "" {
		// Bounded and unverified: the unverified iss and aud only pick
		// which keys to try (docs/security.md T-10: no signature work before the
		// limits). The decoded token is verified below, not decoded again.
		var err error
		if tok, err = federation.Parse(raw); err != nil {
			return nil, tokenError(isSubject, string(federation.ReasonOf(err)), err)
		}
		if sel.Issuer, err = tok.Issuer(); err != nil {
			return nil, tokenError(isSubject, string(federation.ReasonOf(err)), err)
		}
		if sel.Audiences, err = tok.Audiences(); err != nil {
			return nil, tokenError(isSubject, string(federation.ReasonOf(err)), err)
		}
	}
	// The snapshot in memory answers nearly every request; when it cannot
	// (the registry not loaded yet, a pool or issuer it does not know),
	// Select reads storage, which the limits owed pay for first.
	m, known, err := g.Trust.Lookup(sel)
	if !known {
		if err := req.payLimits(); err != nil {
			return nil, err
		}
		m, err = g.Trust.Select(ctx, sel)
	}
	if err != nil {
		if trust.ReasonOf(err) == trust.ReasonUnavailable {
			return nil, unavailable(string(trust.ReasonUnavailable), err)
		}
		if !auditableByClientOrg(err, client) {
			req.trace.foreignPool = true
		}
		if sel.PoolID != "" && !mayKnowPool(client, trust.PoolOf(err)) {
			// The caller named the pool: unknown, disabled and a provider
			// refused all read as no such pool (docs/security.md T-102).
			return nil, hidePool(isSubject, string(trust.ReasonOf(err)), err)
		}
		return nil, tokenError(isSubject, string(trust.ReasonOf(err)), err)
	}
	if isSubject {
		req.trace.org, req.trace.pool, req.trace.provider = m.Pool.OrgID, m.Pool.ID, m.Provider.ID
	}
	if err := req.checkPool(m.Pool.ID); err != nil {
		return nil, err
	}
	// Before any signature work: the client may use this grant and this
	// pool, or the pool admits no client. The actor's pool is judged like
	// the subject's. Scopes and audiences are judged once known. The
	// token is not verified yet, and only the pool's provider could
	// verify it: to a caller not entitled to know the pool, a pool that
	// refuses it reads as no such pool (docs/security.md T-102).
	if err := CheckClient(client, Issuance{Grant: req.GrantType, Pool: m.Pool}); err != nil {
		e, ok := errors.AsType[*oauth2.Error](err)
		if ok && !mayKnowPool(client, m.Pool) {
			return nil, hidePool(isSubject, e.Reason, e.Err)
		}
		if ok && e.Reason == ReasonClientPoolNotAllowed && (sel.PoolID != "" || !isSubject) {
			// The pool is the named one, or the actor token's: the
			// parameter at fault, for Confluent's source.parameter
			// (docs/api.md "Confluent STS dialect").
			c, p := *e, "actor_token"
			if isSubject {
				p = "identity_pool_id"
			}
			c.Err = sourceParam{param: p, err: e.Err}
			return nil, &c
		}
		return nil, err
	}
	var id *federation.Identity
	if tok != nil {
		id, err = g.Federation.VerifyParsed(ctx, m.Provider, tok)
	} else {
		id, err = g.Federation.Verify(ctx, m.Provider, raw)
	}
	if err != nil {
		var fe *federation.Error
		if errors.As(err, &fe) && fe.Unavailable() { // docs/security.md F-07, T-58, T-60
			return nil, unavailable(string(fe.Reason), err)
		}
		return nil, tokenError(isSubject, string(federation.ReasonOf(err)), err)
	}
	var spend string
	if isSubject {
		req.trace.srcIss, req.trace.srcSub = id.Issuer, id.Subject
		req.trace.actor = externalActor(id.Issuer, id.Subject)
	}
	if m.Provider.OneTimeUse {
		// An actor token of a one-time-use provider is spent like a
		// subject token: in the same key space, so a token used once as
		// either is refused as either.
		if spend, err = spendKey(id); err != nil {
			return nil, tokenError(isSubject, ReasonSubjectJTIMissing, err)
		}
	}
	// The policy judges what would be issued: for an actor, under its
	// subject's ceilings; for a subject, under its pool's (T-185).
	issuing := of
	if issuing == nil {
		issuing = &subject{scopes: m.Pool.Scopes, googleScopes: m.Pool.GoogleDefaultScopes, poolAudiences: m.Pool.Audiences}
	}
	pr := g.policyRequest(req, client, issuing)
	pr.Pool, pr.Provider = m.Pool.ID, m.Provider.ID
	if !isSubject {
		// The actor's pool judges the actor token, of its own type.
		pr.SubjectTokenType = req.ActorTokenType
	}
	res, err := m.Pool.Program.Evaluate(ctx, id.Claims, pr)
	if err != nil {
		return nil, tokenError(isSubject, string(policy.ReasonOf(err)), err)
	}
	var act *tokens.Actor
	if isSubject {
		// A delegation stays one (docs/security.md T-166). An actor
		// token's own chain is not carried: act names the actor alone
		// (docs/design.md#lifetimes).
		if act, err = externalAct(id.Claims["act"], id.Issuer, g.issuerURL(), g.maxDepth()); err != nil {
			return nil, err
		}
	}
	s := &subject{
		iss: id.Issuer, rawSub: id.Subject, sub: res.Subject, org: m.Pool.OrgID, act: act,
		pool: m.Pool.ID, provider: m.Provider.ID, poolRec: m.Pool,
		clientID: tokens.PoolClientID(m.Pool.ID, m.Provider.ID),
		src:      &tokens.Source{Issuer: id.Issuer, Subject: id.Subject},
		mayAct:   readMayAct(id.Claims["may_act"], id.Issuer), exp: id.Expiry,
		scopes: m.Pool.Scopes, maxLifetime: m.Pool.MaxTokenLifetime,
		poolAudiences: m.Pool.Audiences, googleScopes: m.Pool.GoogleDefaultScopes,
		spendKey: spend, iat: id.IssuedAt,
	}
	if m.Pool.PrincipalID != "" {
		if err := g.bindPrincipal(ctx, s, m.Pool); err != nil {
			return nil, err
		}
	}
	if len(res.Attributes) > 0 || len(res.Groups) > 0 {
		s.attributes = make(map[string]any, len(res.Attributes)+1)
		for k, v := range res.Attributes {
			s.attributes[k] = v
		}
		if len(res.Groups) > 0 {
			s.attributes[policy.AttributeGroups] = res.Groups
		}
	}
	return s, nil
}

// auditableByClientOrg reports whether a pool-selection refusal may be
// recorded in client's organization when nothing else gave the event one
// (docs/security.md D-19): when it concerns a pool of that organization,
// or no pool at all (none has that ID, none trusts that issuer). A
// client's selection by issuer is among its own organization's pools
// so its refusals there carry that organization. Any other
// (another organization's pool disabled or its provider refused) would
// tell that organization's administrators what its client may not learn
// (T-102); it stays instance-level, as without a client.
func auditableByClientOrg(err error, client *storage.Client) bool {
	if client == nil {
		return false
	}
	switch trust.ReasonOf(err) {
	case trust.ReasonPoolUnknown, trust.ReasonIssuerUnknown:
		return true
	}
	return trust.OrgOf(err) == client.OrgID
}

// bindPrincipal makes s act as the pool's principal (docs/design.md#the-model principal
// binding): sub becomes the principal's ID and principal its kind, the
// shape our own APIs authorize by; the source identity stays in src. A
// missing or disabled principal, or one of another organization, refuses
// the exchange; the binding is checked on every exchange (docs/security.md T-57).
func (g *TokenExchange) bindPrincipal(ctx context.Context, s *subject, pool *trust.Pool) error {
	if g.Principals == nil {
		return unavailable(ReasonPoolPrincipal, errors.New("no principal store for a pool with a principal binding"))
	}
	p, err := loadPrincipal(ctx, g.Principals, g.PrincipalCache, pool.PrincipalID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return refuse(oauth2.ErrorInvalidRequest, descPoolPrincipal, ReasonPoolPrincipal, err)
	case err != nil:
		return unavailable(ReasonPoolPrincipal, err)
	case p.Disabled || p.OrgID != pool.OrgID:
		return refuse(oauth2.ErrorInvalidRequest, descPoolPrincipal, ReasonPoolPrincipal,
			errors.New("pool principal "+p.ID+" is disabled or of another organization"))
	}
	s.sub, s.principal = p.ID, string(p.Kind)
	return nil
}

// own verifies one of our access tokens. Its pool, when it has one, is
// looked up again so a disabled or deleted pool stops re-exchange
// (docs/security.md T-57).
func (g *TokenExchange) own(ctx context.Context, req *Request, raw string, client *storage.Client, isSubject bool) (*subject, error) {
	// The pool is in the token: it is charged once the signature says so
	// (a forged token costs no pool anything), the limits owed before.
	if err := req.payLimits(); err != nil {
		return nil, err
	}
	c, err := g.Tokens.VerifyAccessTokenAnyAudience(ctx, raw)
	if err != nil {
		if sts.ErrorCode(err) == sts.Unavailable {
			return nil, unavailable(tokens.Reason(err), err)
		}
		return nil, tokenError(isSubject, tokens.Reason(err), err)
	}
	s := &subject{
		iss: c.Issuer, rawSub: c.Subject, sub: c.Subject, org: c.OrgID, principal: c.Principal,
		pool: c.Pool, provider: c.Provider, clientID: c.ClientID, src: c.Src, act: c.Act,
		exp: c.Expiry.Time(), iat: c.IssuedAt.Time(), scopes: strings.Fields(c.Scope), audiences: slices.Clone([]string(c.Audience)),
		cab: c.CAB, own: true, patID: c.PATID, patGen: c.PATGeneration, grantID: c.GrantID,
		srcJTIs: append(slices.Clip(c.SourceJTIs), c.ID), srcClients: c.SourceClientIDs, mayAct: c.JudgedMayAct(),
		further:   furtherSources{subs: c.SourceSubjects, pats: c.SourcePATs, pools: c.SourcePools, grants: c.SourceGrants},
		apiScopes: storage.PrincipalKind(c.Principal).Valid(),
	}
	if len(c.Attributes) > 0 {
		s.attributes = c.Attributes
	}
	if storage.IsUUID(c.ClientID) && !slices.Contains(s.srcClients, c.ClientID) {
		s.srcClients = append(slices.Clip(s.srcClients), c.ClientID)
	}
	s.srcKIDs = c.SourceKeyIDs
	if c.KeyID != "" && !slices.Contains(s.srcKIDs, c.KeyID) {
		s.srcKIDs = append(slices.Clip(s.srcKIDs), c.KeyID)
	}
	if isSubject {
		req.trace.org, req.trace.pool, req.trace.provider = c.OrgID, c.Pool, c.Provider
		req.trace.srcIss, req.trace.srcSub = c.Issuer, c.Subject
		req.trace.actor = ownActor(c)
	}
	if isSubject && client == nil && c.Pool == "" {
		// Neither a client nor a pool pays for this request: the
		// credential's own buckets do, those the bearer API charges it
		// (docs/security.md T-239): its client's, or its principal's (an
		// access token bought with a PAT).
		var byClient, byPrincipal string
		if storage.IsUUID(c.ClientID) {
			byClient = c.ClientID
		}
		if storage.PrincipalKind(c.Principal).Valid() {
			byPrincipal = c.Subject
		}
		if err := req.rate.payCredential(byClient, byPrincipal); err != nil {
			return nil, err
		}
	}
	if c.Pool != "" {
		p, err := g.Trust.Check(ctx, c.Pool, c.Provider)
		if err != nil {
			if trust.ReasonOf(err) == trust.ReasonUnavailable {
				return nil, unavailable(string(trust.ReasonUnavailable), err)
			}
			return nil, tokenError(isSubject, string(trust.ReasonOf(err)), err)
		}
		s.maxLifetime, s.poolRec = p.MaxTokenLifetime, p
		if err := req.checkPool(p.ID); err != nil {
			return nil, err
		}
		if err := CheckClient(client, Issuance{Grant: req.GrantType, Pool: p}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// policyRequest is what a pool's policy sees as request when a token is
// issued under subj's ceilings (docs/security.md T-185): scope is the
// scope the token will carry, the one asked for or, when none is (or
// Google's default scope), the default the ceiling and the client give;
// audience is the aud it will carry, the audience and resource values
// asked for or, when there are none, the default audience. A condition
// read the parameters as sent: one refusing a scope or an audience asked
// for by name admitted it when the request named none and got it by
// default. resource is the parameter as sent. A scope or audience the
// exchange will refuse anyway is shown as asked.
func (g *TokenExchange) policyRequest(req *Request, client *storage.Client, subj *subject) policy.Request {
	pr := policy.Request{
		Audiences: req.Audiences, Resources: req.Resources, Scopes: req.Scopes,
		ClientID: clientID(client), SubjectTokenType: req.SubjectTokenType,
	}
	if aud, err := g.audience(req, subj); err == nil {
		pr.Audiences = aud
	}
	if sc, err := grantScope(req, subj, client); err == nil {
		pr.Scopes = sc
	}
	return pr
}

func clientID(c *storage.Client) string {
	if c == nil {
		return ""
	}
	return c.ID
}
