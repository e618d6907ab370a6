package pools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// tokenTypeJWT is the subject_token_type the dry run evaluates as (RFC
// 8693 urn:ietf:params:oauth:token-type:jwt).
const tokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"

// Reasons the dry run gives besides federation's and policy's.
const (
	ReasonPoolDisabled    = "pool_disabled"
	ReasonIssuerUnknown   = "issuer_unknown"
	ReasonProviderUnknown = "provider_unknown"
	ReasonPolicyInvalid   = string(policy.ReasonPolicyInvalid)
	// ReasonAudienceNotAllowed is the token endpoint's reason (grants) for
	// an audience that is neither the default nor one of the pool's.
	ReasonAudienceNotAllowed = "audience_not_allowed"
	// ReasonTargetInvalid is the token endpoint's reason for a malformed
	// audience or resource, or too many (policy.Targets).
	ReasonTargetInvalid = "target_invalid"
	// ReasonScopeDefaultEmpty and ReasonScopeExceedsPool are the token
	// endpoint's reasons for a default scope it refuses (policy.DefaultScope).
	ReasonScopeDefaultEmpty = "scope_default_empty"
	ReasonScopeExceedsPool  = "scope_exceeds_pool"
	// ReasonClientAuthFailed is the token endpoint's reason for a client
	// that fails authentication, such as a disabled one.
	ReasonClientAuthFailed = clientauth.ReasonAuthFailed
)

// TestInput is one dry run: a subject token against a pool.
type TestInput struct {
	PoolID string
	// ProviderID picks the provider; "" means the one whose issuer the
	// token carries.
	ProviderID   string
	SubjectToken string
	// Request holds the exchange's parameters. The policy judges what the
	// exchange would issue for them (docs/security.md T-185): TestPool sets
	// the scope and audience the token would carry (see judgedRequest),
	// Pool, Provider and SubjectTokenType.
	Request policy.Request
}

// Step is one line of a dry run's trace.
type Step struct {
	// Name is pool, provider, signature, claims, policy, or the policy
	// field evaluated (condition, identity_claim, mapping.*).
	Name string
	OK   bool
	// CEL marks a step of the pool's policy; Expression is its source
	// (empty for an unset condition).
	CEL        bool
	Expression string
	// Detail is what the step found: for CEL steps the value or outcome,
	// otherwise a sentence.
	Detail string
}

// TestResult is the outcome of a dry run. A denial is a result, not an
// error.
type TestResult struct {
	Allowed bool
	// Reason is the stable reason of a denial; "" when allowed.
	Reason     string
	ProviderID string
	Steps      []Step
	Identity   string
	Subject    string
	Groups     []string
	Attributes map[string]string
}

// TestPool verifies in.SubjectToken against the pool's providers the way
// an exchange does (federation.Verify: signature with the provider's keys,
// fetched over the network with the token endpoint's client rules; iss,
// aud and times) and runs the pool's CEL condition, identity and mapping
// (policy.Explain), recording each step. Nothing is minted and nothing is
// written; one-time-use providers do not consume the token. The policy
// judges the scope and audience the exchange would issue, defaults
// included (judgedRequest), shown in the "request" step, and each audience
// is held to the pool's as the exchange holds it (policy.AudienceAllowed).
// A client_id is judged as the exchange judges it: authenticated as the
// token endpoint does (exchangeClient: disabled, its service account, a
// public client taken for an anonymous caller), then by the exchange's
// client check (clientauth.Check: grant type, the pool on its list,
// scopes, audiences). A default scope the exchange refuses is denied
// (judgedRequest). What an exchange
// checks beyond that — the requested scopes against the pool's ceiling,
// the lifetime — is not evaluated.
// Errors (not denials): [sts.Invalid] (also a client_id the pool's
// organization has no client of), [sts.NotFound] (pool),
// [sts.Unavailable].
func (s *Service) TestPool(ctx context.Context, in TestInput) (TestResult, error) {
	var res TestResult
	if err := checkRef("pool_id", "pool", in.PoolID); err != nil {
		return res, err
	}
	if in.SubjectToken == "" {
		return res, invalid("subject_token required")
	}
	if in.ProviderID != "" && !ValidID(in.ProviderID) {
		return res, invalid("provider_id: provider ID %s must be %s characters", quote(in.ProviderID), recordIDRule)
	}
	step := func(name string, ok bool, detail string) {
		res.Steps = append(res.Steps, Step{Name: name, OK: ok, Detail: detail})
	}
	deny := func(reason string) (TestResult, error) {
		res.Allowed, res.Reason = false, reason
		s.logger().InfoContext(ctx, "pool dry run", "pool", in.PoolID, "provider", res.ProviderID, "allowed", false, "reason", reason)
		return res, nil
	}

	p, err := s.GetPool(ctx, in.PoolID)
	if err != nil {
		return res, err
	}
	// The exchange refuses malformed targets, too many, before anything
	// else, by this same rule (policy.Targets, docs/security.md F-101).
	aud, rsc, err := policy.Targets(in.Request.Audiences, in.Request.Resources)
	if err != nil {
		step("request", false, fmt.Sprintf("%v (reason %s)", err, ReasonTargetInvalid))
		return deny(ReasonTargetInvalid)
	}
	in.Request.Audiences, in.Request.Resources = aud, rsc
	// Google's /v1/token reads an audience that names a provider as
	// naming the pool and provider; it issues the default audience.
	if in, err = s.googleAudience(p, in, step); err != nil {
		return res, err
	}
	named, err := s.namedClient(ctx, p.OrgID, in.Request.ClientID)
	if err != nil {
		return res, err
	}
	step("pool", true, fmt.Sprintf("%s (organization %s)", p.ID, p.OrgID))
	if p.Disabled {
		step("pool", false, "pool is disabled (reason pool_disabled)")
		return deny(ReasonPoolDisabled)
	}
	// The client the exchange would run with: the token endpoint first
	// authenticates the one named, then judges what it authenticated.
	client, err := s.exchangeClient(ctx, named, step)
	if err != nil {
		if oe, ok := errors.AsType[*oauth2.Error](err); ok {
			return deny(oe.Reason)
		}
		return res, err
	}
	req, err := judgedRequest(p, in.Request, client, s.limits.DefaultAudience)
	if err != nil {
		// The exchange refuses such a default (invalid_scope) rather than
		// issue a token of a scope nobody asked for (docs/security.md
		// T-151): the dry run says so too.
		reason := ReasonScopeDefaultEmpty
		if errors.Is(err, policy.ErrGoogleScopesExceed) {
			reason = ReasonScopeExceedsPool
		}
		step("request", false, fmt.Sprintf("%v (reason %s)", err, reason))
		return deny(reason)
	}
	// The client named, as the exchange judges it before any signature
	// work (grant type, disabled, the pool on its list), and again below on
	// what would be issued: by the exchange's own check, so the dry run
	// cannot admit a client the exchange refuses (docs/security.md T-214).
	// Without a client_id the client is not judged: the dry run tests the
	// pool, whoever calls. A public client is judged as the anonymous
	// caller the exchange takes it for (client nil).
	judgeClient := func(is clientauth.Issuance) bool {
		if named == nil {
			return true
		}
		is.Grant, is.OrgID, is.Pool = oauth2.GrantTypeTokenExchange, p.OrgID, &p
		if err := clientauth.Check(client, is); err != nil {
			reason := clientauth.ReasonAuthRequired
			if oe, ok := errors.AsType[*oauth2.Error](err); ok {
				reason = oe.Reason
			}
			step("client", false, fmt.Sprintf("client %s: %v (reason %s)", named.ID, errors.Unwrap(err), reason))
			res.Reason = reason
			return false
		}
		return true
	}
	if !judgeClient(clientauth.Issuance{}) {
		return deny(res.Reason)
	}
	providers, err := s.store.ListProviders(ctx, p.ID)
	if err != nil {
		return res, storageErr(err, "providers")
	}
	prg, err := s.compiler.Compile(p)
	if err != nil {
		// The registry refuses such a pool too (fail closed).
		step("policy", false, fmt.Sprintf("%s (reason %s)", sts.ErrorMessage(compileErr(s.compiler, p)), ReasonPolicyInvalid))
		return deny(ReasonPolicyInvalid)
	}

	// The provider is the one named, else the one whose issuer the token
	// carries: every other provider answers issuer_mismatch before any key
	// is fetched.
	var id *federation.Identity
	var last error
	found := false
	for _, pr := range providers {
		if in.ProviderID != "" && pr.ID != in.ProviderID {
			continue
		}
		found = true
		id, last = s.verifier.Verify(ctx, pr, in.SubjectToken)
		reason := federation.ReasonOf(last)
		if reason == federation.ReasonIssuerMismatch && in.ProviderID == "" {
			continue
		}
		res.ProviderID = pr.ID
		if last != nil {
			name := "signature"
			if reason == federation.ReasonProviderDisabled {
				name = "provider"
			}
			step(name, false, fmt.Sprintf("provider %s: %v (reason %s)", pr.ID, last, reason))
			return deny(string(reason))
		}
		break
	}
	if id == nil {
		switch {
		case in.ProviderID != "" && !found:
			step("provider", false, fmt.Sprintf("provider %q is not in pool %s (reason %s)", in.ProviderID, p.ID, ReasonProviderUnknown))
			return deny(ReasonProviderUnknown)
		case last != nil:
			step("provider", false, fmt.Sprintf("%s (reason %s)", last, ReasonIssuerUnknown))
		default:
			step("provider", false, "no provider of the pool has the token's issuer (reason issuer_unknown)")
		}
		return deny(ReasonIssuerUnknown)
	}
	now := s.now()
	step("provider", true, res.ProviderID+" ("+id.Issuer+")")
	step("signature", true, fmt.Sprintf("alg %s, kid %q", id.Algorithm, id.KeyID))
	step("claims", true, fmt.Sprintf("sub %q, aud %q, expires %s (in %s)", id.Subject, id.Audience,
		id.Expiry.UTC().Format(time.RFC3339), id.Expiry.Sub(now).Round(time.Second)))

	req.Pool, req.Provider, req.SubjectTokenType = p.ID, res.ProviderID, tokenTypeJWT
	step("request", true, fmt.Sprintf("scope %q, audience %q, resource %q, client_id %q (what the exchange would issue)",
		req.Scopes, req.Audiences, req.Resources, req.ClientID))
	out, err := prg.Explain(ctx, id.Claims, req)
	for _, st := range out.Trace {
		detail := st.Detail
		if detail == "" {
			detail = st.Outcome
		}
		res.Steps = append(res.Steps, Step{Name: st.Field, OK: st.Outcome != "false" && st.Outcome != "error", CEL: true,
			Expression: st.Expression, Detail: detail})
	}
	if err != nil {
		return deny(string(out.Reason))
	}
	// The exchange then refuses an audience its pool does not allow
	// (invalid_target), by the same rule: a dry run that stopped at the
	// policy answered ALLOWED for it (docs/security.md F-101).
	for _, aud := range req.Audiences {
		if !policy.AudienceAllowed(aud, s.limits.DefaultAudience, s.limits.Audiences, p.Audiences) {
			step("audience", false, fmt.Sprintf("%q is neither the issuer nor one of pool %s's audiences (reason %s)", aud, p.ID, ReasonAudienceNotAllowed))
			return deny(ReasonAudienceNotAllowed)
		}
	}
	if !judgeClient(clientauth.Issuance{Scopes: req.Scopes, Audiences: req.Audiences,
		Refresh: slices.Contains(req.Scopes, oauth2.ScopeOfflineAccess)}) {
		return deny(res.Reason)
	}
	if client != nil {
		step("client", true, fmt.Sprintf("client %s may obtain scope %q, audience %q from pool %s", client.ID, req.Scopes, req.Audiences, p.ID))
	}
	if named == nil && !p.AllowUnauthenticated {
		// The pool is tested whoever calls, but the exchange refuses an
		// anonymous caller here: said, so that ALLOWED is not read as
		// "works without a client" (docs/security.md T-214).
		step("client", true, fmt.Sprintf("not judged: no client_id given; pool %s requires an authenticated client, so the exchange refuses an anonymous caller (reason %s)",
			p.ID, clientauth.ReasonAuthRequired))
	}
	res.Allowed = true
	res.Identity, res.Subject, res.Groups, res.Attributes = out.Identity, out.Subject, out.Groups, out.Attributes
	s.logger().InfoContext(ctx, "pool dry run", "pool", p.ID, "provider", res.ProviderID, "allowed", true)
	return res, nil
}

// googleAudience reads each audience of in that the exchange would not
// allow as an audience but that names a provider of pool p
// (policy.ParseResourceName: Google's full resource names and ours) as
// Google's /v1/token reads it: it names the pool and provider, which then
// judges the token, and is no audience of the issued token. A name of
// another pool, or of another provider than in names, is bad input: the
// exchange would not judge the token by this pool and provider.
func (s *Service) googleAudience(p storage.Pool, in TestInput, step func(string, bool, string)) (TestInput, error) {
	var kept []string
	for _, aud := range in.Request.Audiences {
		if policy.AudienceAllowed(aud, s.limits.DefaultAudience, s.limits.Audiences, p.Audiences) {
			kept = append(kept, aud)
			continue
		}
		pool, provider, ok := policy.ParseResourceName(aud)
		if !ok {
			kept = append(kept, aud)
			continue
		}
		if pool != p.ID {
			return in, invalid("audience %s names pool %s, not %s", quote(aud), quote(pool), p.ID)
		}
		if in.ProviderID != "" && in.ProviderID != provider {
			return in, invalid("audience %s names provider %s, not %s", quote(aud), quote(provider), quote(in.ProviderID))
		}
		in.ProviderID = provider
		step("audience", true, fmt.Sprintf("%q names pool %s and provider %s, as Google's /v1/token reads it: the token gets the default audience", aud, pool, provider))
	}
	in.Request.Audiences = kept
	return in, nil
}

// judgedRequest is what an exchange's condition sees as request for the
// parameters in (docs/security.md T-185), computed by the token
// endpoint's own rules (policy.DefaultScope, policy.IssuedAudience): with
// no scope, the pool's default within the client's scopes; with Google's
// default scope alone, the pool's google_default_scopes, as /v1/token
// reads it; with no audience or resource, the default audience. A dry run
// judging the parameters as sent admitted what the exchange refuses. A
// default the exchange refuses is its error (policy.DefaultScope). client
// is the one the exchange runs with (exchangeClient): request.client_id
// is its ID, empty when it runs anonymous, as the exchange's is.
func judgedRequest(p storage.Pool, in policy.Request, client *storage.Client, defaultAudience string) (policy.Request, error) {
	out := in
	out.ClientID = ""
	if client != nil {
		out.ClientID = client.ID
	}
	google := policy.StandsForDefault(in.Scopes, p.Scopes)
	if google || in.Scopes == nil {
		sc, err := policy.DefaultScope(p.Scopes, p.GoogleDefaultScopes, google, client)
		if err != nil {
			return in, err
		}
		out.Scopes = sc
	}
	if len(in.Audiences)+len(in.Resources) > 0 || defaultAudience != "" {
		out.Audiences = policy.IssuedAudience(in.Audiences, in.Resources, defaultAudience)
	}
	return out, nil
}

// namedClient is the client id of org the dry run names; nil for none.
// The client must be one of the pool's organization: another's scopes
// are not the dry run's to show. Its UUID names it in any case
// (storage.CanonicalID, docs/security.md T-215): `sts pool test` in
// direct mode has no API to lower it first.
func (s *Service) namedClient(ctx context.Context, org, id string) (*storage.Client, error) {
	if id == "" {
		return nil, nil
	}
	c, err := s.clientOf(ctx, org, storage.CanonicalID(id))
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// exchangeClient is the client an exchange naming c runs with, as the
// token endpoint authenticates it (grants.Clients, clientauth Optional):
// a disabled client fails authentication; a public one (auth method none)
// is identified, not authenticated, and the exchange runs as an anonymous
// caller, judged by the pool's allow_unauthenticated and not by the
// client's lists (nil); a confidential one needs its service account
// enabled and of its organization (clientauth.ServiceAccount, A-94). A
// refusal is an *oauth2.Error with the exchange's reason, recorded as a
// failed client step; any other error is a failed read.
func (s *Service) exchangeClient(ctx context.Context, c *storage.Client, step func(string, bool, string)) (*storage.Client, error) {
	switch {
	case c == nil:
		return nil, nil
	case c.Disabled:
		step("client", false, fmt.Sprintf("client %s: client disabled (reason %s)", c.ID, ReasonClientAuthFailed))
		return nil, &oauth2.Error{Code: oauth2.ErrorInvalidClient, Reason: ReasonClientAuthFailed}
	case c.AuthMethod == oauth2.AuthMethodNone:
		step("client", true, fmt.Sprintf("client %s is public (auth method none): the exchange identifies it, does not authenticate it, and runs as an anonymous caller", c.ID))
		return nil, nil
	}
	if _, err := clientauth.ServiceAccount(ctx, s.store, nil, c); err != nil {
		oe, ok := errors.AsType[*oauth2.Error](err)
		if !ok || oe.Code != oauth2.ErrorInvalidClient {
			return nil, sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		step("client", false, fmt.Sprintf("client %s: %v (reason %s)", c.ID, errors.Unwrap(err), oe.Reason))
		return nil, err
	}
	return c, nil
}

// clientOf reads client id of org; any other is bad input, the same
// whether it exists elsewhere or not.
func (s *Service) clientOf(ctx context.Context, org, id string) (storage.Client, error) {
	unknown := invalid("client_id: organization %s has no client %s", org, quote(id))
	if !storage.IsUUID(id) {
		return storage.Client{}, unknown
	}
	c, err := s.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && c.OrgID != org):
		return storage.Client{}, unknown
	case err != nil:
		return storage.Client{}, storageErr(err, "client")
	}
	return c, nil
}
