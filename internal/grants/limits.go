package grants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// actor verifies actor_token like a subject token (docs/security.md T-51) and
// returns the act claim of the new token: the actor outermost, the
// subject's existing chain nested inside (RFC 8693 §4.1).
//
// The actor token passes the checks a subject token passes: its pool's
// client policy with the request's client (a pool that needs client
// authentication needs it for actors too), and, for a one-time-use
// provider, a spend key; the caller spends it with the subject's once
// every check has passed. The verified actor is returned for that. It is
// of the subject's organization (docs/security.md A-89).
func (g *TokenExchange) actor(ctx context.Context, req *Request, subj *subject, client *storage.Client) (*tokens.Actor, *subject, error) {
	if req.ActorToken == "" {
		// A token of ours carries the chain the cap allowed when it was
		// issued; the cap is the longest an exchange issues as it is now,
		// so a re-exchange without an actor is held to it too, as a
		// refresh is (docs/security.md T-233).
		if actDepth(subj.act) > g.maxDepth() {
			return nil, nil, badSubject(ReasonDelegationTooDeep, errors.New("the subject token's delegation chain is longer than the delegation depth cap"))
		}
		return subj.act, nil, nil
	}
	var a *subject
	var err error
	switch req.ActorTokenType {
	case oauth2.TokenTypeJWT, oauth2.TokenTypeIDToken:
		a, err = g.external(ctx, req, req.ActorToken, client, subj)
	case oauth2.TokenTypeAccessToken:
		if !g.SelfExchange {
			return nil, nil, refuse(oauth2.ErrorInvalidRequest, descActor, ReasonSelfExchangeDisabled, errors.New("exchanging our own tokens is disabled"))
		}
		a, err = g.own(ctx, req, req.ActorToken, client, false)
	default: // refused by Exchange before any token is looked at
		return nil, nil, badRequest(ReasonActorTypeUnsupported, fmt.Errorf("actor_token_type %q is not supported", trunc(req.ActorTokenType)))
	}
	if err != nil {
		return nil, nil, err
	}
	if a.org != subj.org {
		// The issued token is the subject's organization's, and its act
		// is believed there (may_act, the pools' policies): another
		// organization's administrators could make one of their tokens
		// say anything (docs/security.md A-89). An external actor's pool
		// is chosen among the subject's organization's alone; this is
		// the check for our own tokens.
		return nil, nil, refuse(oauth2.ErrorInvalidRequest, descActor, ReasonActorOrgMismatch, errors.New("actor token of another organization"))
	}
	if a.cab != nil {
		// A downscoped token is for resource servers only: the issued
		// token carries the subject's boundary, so the actor's would be
		// dropped (docs/security.md A-53).
		return nil, nil, refuse(oauth2.ErrorInvalidRequest, descActor, ReasonActorBoundary, errors.New("actor token limited by a credential access boundary"))
	}
	if a.spendKey != "" && a.spendKey == subj.spendKey {
		return nil, nil, refuse(oauth2.ErrorInvalidRequest, descActor, ReasonSubjectReplayed, errors.New("the one-time subject token as its own actor"))
	}
	// RFC 8693 §4.4: when the subject names who may act for it, the actor
	// must be one of them.
	if subj.mayAct != nil && !mayAct(subj.mayAct, a.iss, a.rawSub) {
		return nil, nil, refuse(oauth2.ErrorInvalidRequest, descActor, ReasonActorNotAllowed, errors.New("actor not allowed by may_act"))
	}
	act := &tokens.Actor{Issuer: a.iss, Subject: a.rawSub, Act: subj.act}
	if a.own {
		act.ClientID = a.clientID
	}
	// The actor adds one to the subject's chain: past the cap only when
	// the subject token's chain already fills it, which is that token's
	// fault, not the actor token's.
	maxDepth := g.maxDepth()
	depth := 0
	for x := act; x != nil; x = x.Act {
		if depth++; depth > maxDepth {
			return nil, nil, badSubject(ReasonDelegationTooDeep, errors.New("the subject token's delegation chain leaves no room for an actor"))
		}
	}
	return act, a, nil
}

// maxDepth is the longest delegation chain (act) an issued token carries.
func (g *TokenExchange) maxDepth() int { return delegationCap(g.MaxDelegationDepth) }

// delegationCap is the delegation depth cap configured as n:
// DefaultMaxDelegationDepth when n is not positive.
func delegationCap(n int) int {
	if n <= 0 {
		return DefaultMaxDelegationDepth
	}
	return n
}

// actDepth is the number of actors in the chain a.
func actDepth(a *tokens.Actor) int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// issuerURL is the iss of the tokens we issue ("" without an Issuer).
func (g *TokenExchange) issuerURL() string {
	if g.Issuer == nil {
		return ""
	}
	return g.Issuer.IssuerURL
}

// maxActLength bounds each iss and sub of an external subject token's
// act claim: they are signed into the issued token.
const maxActLength = 1024

// externalAct reads the act claim of a verified subject token of a
// pool's provider, iss being the token's issuer: that token is itself a
// delegation (RFC 8693 §4.1), someone acting for its sub, and the token
// exchanged from it names them as one of ours does, so that it never
// reads as the subject's own (docs/security.md T-166). Each actor is its
// sub, under its iss or, without one, under iss (the issuer that
// asserted it); anything else (a client_id of that issuer) is left out.
// An act that names no actor, one whose iss is not in plain form
// ([federation.PlainIssuer]), one under ours (our issuer however spelled,
// [federation.SameIssuer], its own iss or the one it inherits: a principal
// of ours that issuer cannot vouch for, and we never verified, which a
// relying party that normalises issuers reads as ours), or a chain longer
// than maxDepth, is refused. A nil claim is no delegation.
func externalAct(claim any, iss, ours string, maxDepth int) (*tokens.Actor, error) {
	if claim == nil {
		return nil, nil
	}
	var first *tokens.Actor
	next := &first
	for depth := 1; claim != nil; depth++ {
		if depth > maxDepth {
			return nil, badSubject(ReasonDelegationTooDeep, errors.New("the subject token's delegation chain is too deep"))
		}
		m, ok := claim.(map[string]any)
		if !ok {
			return nil, badSubject(ReasonSubjectActInvalid, errors.New("the subject token's act is not an object"))
		}
		a := &tokens.Actor{Issuer: iss}
		sub, ok := m["sub"].(string)
		if !ok || sub == "" || len(sub) > maxActLength {
			return nil, badSubject(ReasonSubjectActInvalid, errors.New("the subject token's act has no usable sub"))
		}
		a.Subject = sub
		if v, present := m["iss"]; present {
			s, ok := v.(string)
			if !ok || s == "" || len(s) > maxActLength {
				return nil, badSubject(ReasonSubjectActInvalid, errors.New("the subject token's act has an unusable iss"))
			}
			// Not in plain form, it may be ours to a relying party
			// that normalises otherwise than SameIssuer does: refused
			// rather than each such spelling followed.
			if err := federation.PlainIssuer(s); err != nil {
				return nil, badSubject(ReasonSubjectActInvalid, fmt.Errorf("the subject token's act has an iss not in plain form: %w", err))
			}
			a.Issuer = s
		}
		if federation.SameIssuer(a.Issuer, ours) {
			return nil, badSubject(ReasonSubjectActInvalid, errors.New("the subject token's act names an actor under our issuer"))
		}
		*next, next = a, &a.Act
		claim = m["act"]
	}
	return first, nil
}

// actorType reports whether actor accepts an actor_token_type: an
// external JWT or one of our access tokens (a PAT is never an actor).
func actorType(typ string) bool {
	switch typ {
	case oauth2.TokenTypeJWT, oauth2.TokenTypeIDToken, oauth2.TokenTypeAccessToken:
		return true
	}
	return false
}

// readMayAct reads the may_act claim of a subject token issued by iss
// (an object with sub and optionally iss; nil when absent). Without an
// iss of its own its sub is under iss, the issuer that asserted it, as
// for act (docs/security.md T-167): carried on bare, it would admit that
// sub of any issuer in every later re-exchange. One that names no actor
// (not an object, sub not a non-empty string, iss present but not one)
// is read as admitting none: an empty Subject.
func readMayAct(claim any, iss string) *tokens.MayAct {
	if claim == nil {
		return nil
	}
	m, ok := claim.(map[string]any)
	if !ok {
		return &tokens.MayAct{}
	}
	sub, ok := m["sub"].(string)
	if !ok || sub == "" || len(sub) > maxActLength {
		return &tokens.MayAct{}
	}
	out := &tokens.MayAct{Subject: sub, Issuer: iss}
	if v, present := m["iss"]; present {
		s, ok := v.(string)
		if !ok || s == "" || len(s) > maxActLength {
			return &tokens.MayAct{}
		}
		out.Issuer = s
	}
	return out
}

// mayAct reports whether m, a may_act claim, names the actor: its sub,
// and its iss when m names one. One that names no actor denies.
func mayAct(m *tokens.MayAct, iss, sub string) bool {
	return m.Subject != "" && m.Subject == sub && (m.Issuer == "" || m.Issuer == iss)
}

// audience returns the issued token's aud: the requested audience and
// resource values, each of which must be allowed (docs/security.md T-49), or the
// default. Re-exchange may only keep or narrow the subject's audience.
func (g *TokenExchange) audience(req *Request, subj *subject) (tokens.Audience, error) {
	if len(req.Audiences)+len(req.Resources) == 0 && subj.own {
		return subj.audiences, nil
	}
	// The default is the one the admin dry run judges too (T-185).
	want := policy.IssuedAudience(req.Audiences, req.Resources, g.DefaultAudience)
	for _, t := range want {
		switch {
		case subj.own && !slices.Contains(subj.audiences, t):
			return nil, refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceWidening, errors.New("audience not in the subject token"))
		case !subj.own && !policy.AudienceAllowed(t, g.DefaultAudience, g.Audiences, subj.poolAudiences):
			return nil, refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceNotAllowed, errors.New("audience not allowed"))
		}
	}
	return want, nil
}

// grantScope returns the scope to issue: the requested one, which must be
// within the ceiling (RFC 6749 §5.2 invalid_scope, docs/security.md T-50), or
// the default (policy.DefaultScope: the ceiling, or for Google's default
// scope the pool's google_default_scopes, within the client's scopes and
// without offline_access, docs/security.md T-151) when none was requested.
// The admin dry run computes the same default (T-185).
//
// A requested scope outside the client's list is refused by CheckClient.
func grantScope(req *Request, subj *subject, client *storage.Client) ([]string, error) {
	google := req.defaultScopeAlias && policy.StandsForDefault(req.Scopes, subj.scopes)
	if google || req.Scopes == nil {
		sc, err := policy.DefaultScope(subj.scopes, subj.googleScopes, google, client)
		switch {
		case errors.Is(err, policy.ErrGoogleScopesExceed):
			return nil, refuse(oauth2.ErrorInvalidScope, descScope, ReasonScopeExceedsPool, err)
		case err != nil:
			return nil, refuse(oauth2.ErrorInvalidScope, descScope, ReasonScopeDefaultEmpty, err)
		}
		return sc, nil
	}
	for _, s := range req.Scopes {
		if !subj.allows(s) {
			reason := ReasonScopeExceedsPool
			if subj.own {
				reason = ReasonScopeExceedsSubject
			}
			return nil, refuse(oauth2.ErrorInvalidScope, descScope, reason, errors.New("scope outside the ceiling"))
		}
	}
	return req.Scopes, nil
}

// boundary returns the cab claim: the subject's, or the requested
// Credential Access Boundary. Narrowing an existing boundary is not
// supported, so a second one is refused rather than risk a union.
func boundary(req *Request, subj *subject) (map[string]any, error) {
	if req.Boundary == nil {
		return subj.cab, nil
	}
	if subj.cab != nil {
		return nil, badRequest(ReasonBoundaryExists, errors.New("the subject token already has an access boundary"))
	}
	return req.Boundary.Claim(), nil
}

// lifetime is never beyond the subject token's exp, the actor token's exp
// (a delegation, when there is one) nor the maximum of the subject's pool,
// the actor's pool or the dialect (docs/design.md#lifetimes). An explicitly requested lifetime beyond
// any is refused, not clamped (docs/security.md T-56); otherwise the default
// (15 min, Confluent 900 s) is capped by all.
func (g *TokenExchange) lifetime(req *Request, subj, actor *subject, now time.Time) (time.Duration, error) {
	ceiling := g.MaxLifetime
	if ceiling <= 0 {
		ceiling = DefaultMaxLifetime
	}
	if subj.maxLifetime > 0 {
		ceiling = min(ceiling, subj.maxLifetime)
	}
	if actor != nil && actor.maxLifetime > 0 {
		// The actor's pool bounds what it acts in, as the subject's does
		// (docs/security.md T-168).
		ceiling = min(ceiling, actor.maxLifetime)
	}
	remaining := subj.exp.Sub(now).Truncate(time.Second)
	actorRemaining := remaining
	if actor != nil && !actor.exp.IsZero() {
		actorRemaining = actor.exp.Sub(now).Truncate(time.Second)
	}
	if req.Lifetime > 0 {
		switch {
		case req.maxLifetime > 0 && req.Lifetime > req.maxLifetime:
			return 0, badRequest(ReasonLifetimeExceedsMax, fmt.Errorf("expires_in %d is above the maximum of %d seconds", secs(req.Lifetime), secs(req.maxLifetime)))
		case req.Lifetime > ceiling:
			return 0, badRequest(ReasonLifetimeExceedsPool, fmt.Errorf("expires_in %d is above the pool's maximum of %d seconds", secs(req.Lifetime), secs(ceiling)))
		case req.Lifetime > remaining:
			return 0, badRequest(ReasonLifetimeExceedsSubject, fmt.Errorf("expires_in %d is beyond the subject token's exp (%d seconds left)", secs(req.Lifetime), secs(remaining)))
		case req.Lifetime > actorRemaining:
			return 0, badRequest(ReasonLifetimeExceedsActor, fmt.Errorf("expires_in %d is beyond the actor token's exp (%d seconds left)", secs(req.Lifetime), secs(actorRemaining)))
		}
		return req.Lifetime, nil
	}
	life := g.DefaultLifetime
	if life <= 0 {
		life = DefaultLifetime
	}
	if req.defaultLifetime > 0 {
		life = req.defaultLifetime
	}
	life = min(life, ceiling, remaining)
	if life < time.Second {
		return 0, badSubject(ReasonLifetimeExceedsSubject, errors.New("the subject token expires too soon"))
	}
	if life = min(life, actorRemaining); life < time.Second {
		return 0, badRequest(ReasonLifetimeExceedsActor, errors.New("the actor token expires too soon"))
	}
	return life, nil
}

// lifetimeBounds are the default and maximum lifetime for a grant whose
// own are def and maxLife (zero: the package defaults), within the
// dialect's: the Confluent path's 900 s cap holds for every grant there.
func (q *Request) lifetimeBounds(def, maxLife time.Duration) (time.Duration, time.Duration) {
	if q.defaultLifetime > 0 {
		def = q.defaultLifetime
	}
	if q.maxLifetime > 0 {
		if maxLife <= 0 || maxLife > q.maxLifetime {
			maxLife = q.maxLifetime
		}
		if def <= 0 || def > q.maxLifetime {
			def = q.maxLifetime
		}
	}
	return def, maxLife
}

// secs is d in whole seconds, for messages.
func secs(d time.Duration) int64 { return int64(d / time.Second) }
