package grants

import (
	"errors"
	"net/http"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
)

// Reasons this package adds to those of federation, policy, tokens and
// trust (docs/design.md#trust-decisions-and-errors). They are stable: responses, logs and metric labels
// carry them.
const (
	ReasonMethodNotAllowed       = "method_not_allowed"
	ReasonContentType            = "content_type_unsupported"
	ReasonContentEncoding        = oauth2.ReasonContentEncoding
	ReasonBodyTooLarge           = "body_too_large"
	ReasonMalformed              = oauth2.ReasonMalformed
	ReasonParameterRepeated      = oauth2.ReasonParameterRepeated
	ReasonParameterMissing       = "parameter_missing"
	ReasonTokenInURL             = "token_in_url"
	ReasonGrantUnsupported       = "grant_type_unsupported"
	ReasonSubjectTypeUnsupported = "subject_token_type_unsupported"
	ReasonRequestedTypeUnsupp    = "requested_token_type_unsupported"
	ReasonActorTypeMismatch      = "actor_token_type_mismatch"
	ReasonActorTypeUnsupported   = "actor_token_type_unsupported"
	ReasonActorNotAllowed        = "actor_not_allowed"
	ReasonActorBoundary          = "actor_access_boundary"
	// ReasonActorOrgMismatch: the actor token (one of our tokens) is of
	// another organization than the subject's (docs/security.md A-89).
	ReasonActorOrgMismatch  = "actor_org_mismatch"
	ReasonDelegationTooDeep = "delegation_too_deep"
	// ReasonSubjectActInvalid: the subject token's act claim names no
	// actor (docs/security.md T-166).
	ReasonSubjectActInvalid = "subject_act_invalid"
	// ReasonIssuedTokenTooLarge: what the subject token carries (act,
	// may_act, mapped attributes) would make an access token longer than
	// our verifier accepts (docs/security.md T-166).
	ReasonIssuedTokenTooLarge  = "issued_token_too_large"
	ReasonDerivationTooDeep    = "derivation_too_deep"
	ReasonSelfExchangeDisabled = "self_exchange_disabled"
	ReasonScopeInvalid         = "scope_invalid"
	ReasonScopeExceedsPool     = "scope_exceeds_pool"
	ReasonScopeExceedsSubject  = "scope_exceeds_subject"
	// ReasonScopeDefaultEmpty: no scope was asked for and the default
	// holds nothing but offline_access, which a default never holds
	// (docs/security.md T-151).
	ReasonScopeDefaultEmpty      = "scope_default_empty"
	ReasonTargetInvalid          = "target_invalid"
	ReasonAudienceNotAllowed     = clientauth.ReasonAudienceNotAllowed
	ReasonAudienceWidening       = "audience_widening"
	ReasonLifetimeInvalid        = "lifetime_invalid"
	ReasonLifetimeExceedsPool    = "lifetime_exceeds_pool"
	ReasonLifetimeExceedsSubject = "lifetime_exceeds_subject"
	ReasonLifetimeExceedsActor   = "lifetime_exceeds_actor"
	ReasonLifetimeExceedsMax     = "lifetime_exceeds_maximum"
	ReasonBoundaryInvalid        = "access_boundary_invalid"
	ReasonBoundaryExists         = "access_boundary_exists"
	ReasonClientAuthRequired     = clientauth.ReasonAuthRequired
	ReasonClientAuthUnavailable  = "client_auth_unavailable"
	ReasonClientPoolNotAllowed   = clientauth.ReasonPoolNotAllowed
	ReasonRateLimited            = "rate_limited"
	ReasonPoolRequired           = "identity_pool_id_required"
	ReasonSubjectReplayed        = "subject_token_replayed"
	ReasonSubjectJTIMissing      = "subject_jti_missing"
	ReasonReplayUnavailable      = "replay_store_unavailable"
	// ReasonKeysUnavailable: this replica has not confirmed its signing
	// keys within their bound and signs nothing (docs/security.md F-109).
	ReasonKeysUnavailable     = "signing_keys_unavailable"
	ReasonPoolPrincipal       = "pool_principal_unavailable"
	ReasonSubjectPoolMismatch = "subject_pool_mismatch"
	// ReasonRefreshPoolMismatch: the refresh token's family is not of the
	// pool the request names; ReasonPoolNotApplicable: a pool is named for
	// a grant whose tokens belong to no pool (docs/security.md T-143).
	ReasonRefreshPoolMismatch = "refresh_pool_mismatch"
	ReasonPoolNotApplicable   = "pool_not_applicable"
	// ReasonImpersonationUnsupported: a Google client library will hand
	// the token to a service_account_impersonation_url (docs/security.md T-136).
	ReasonImpersonationUnsupported = "service_account_impersonation_unsupported"
)

// Generic descriptions: the response never says more than these
// (docs/security.md#conventions, anti-enumeration); the reason and the logs do.
const (
	descSubject = "subject_token rejected"
	descActor   = "actor_token rejected"
	// descPoolPrincipal: the pool acts as a principal that cannot be used.
	descPoolPrincipal = "pool principal unavailable"
	descRequest       = "invalid request"
	descTarget        = clientauth.DescTarget
	descScope         = clientauth.DescScope
	descClient        = clientauth.DescClient
	descLimited       = "too many requests"
	descRetry         = "temporarily unavailable, retry later"
	descInternal      = "internal error"
)

// refuse builds the *oauth2.Error a phase returns.
func refuse(code, desc, reason string, cause error) *oauth2.Error {
	return &oauth2.Error{Code: code, Description: desc, Reason: reason, Err: cause}
}

// badRequest is RFC 8693 §2.2.2 invalid_request for the request itself.
// The description is the cause, which names the parameter at fault: it
// describes only what the caller sent (never a token, never our state).
func badRequest(reason string, cause error) *oauth2.Error {
	desc := descRequest
	if cause != nil {
		desc = cause.Error()
	}
	return refuse(oauth2.ErrorInvalidRequest, desc, reason, cause)
}

// badSubject is invalid_request for an unacceptable subject_token
// (RFC 8693 §2.2.2), never invalid_grant or access_denied.
func badSubject(reason string, cause error) *oauth2.Error {
	return refuse(oauth2.ErrorInvalidRequest, descSubject, reason, cause)
}

// unavailable is 503 with Retry-After: our keys or storage failed, not the
// caller (docs/security.md F-07, T-58, T-60).
func unavailable(reason string, cause error) *oauth2.Error {
	return &oauth2.Error{Code: oauth2.ErrorTemporarilyUnavailable, Description: descRetry, Reason: reason,
		Status: http.StatusServiceUnavailable, Err: cause}
}

// isTokenRefusal reports whether e refused the subject or actor token, for
// dialects with their own code for that (Google: invalid_grant).
func isTokenRefusal(e *oauth2.Error) bool {
	return e.Code == oauth2.ErrorInvalidRequest && (e.Description == descSubject || e.Description == descActor)
}

// poolHidden marks the cause of a refusal about a pool or provider the
// caller may not learn about (docs/security.md T-102); the dialects render
// it as they render a pool that does not exist.
type poolHidden struct{ error }

func (h poolHidden) Unwrap() error { return h.error }

// hidePool is the one refusal for a pool or provider named or selected by
// a caller not entitled to know it (mayKnowPool): unknown, disabled, of
// another organization, or refusing this caller (no client where the pool
// needs one, a client of another organization). It is what a pool that
// does not exist answers, a refused token (RFC 8693 §2.2.2; Google's
// dialect: invalid_target), so nothing in it tells these apart; reason
// keeps the precise cause for the log, the audit trail and the metrics.
func hidePool(isSubject bool, reason string, cause error) *oauth2.Error {
	if cause == nil {
		cause = errors.New(reason)
	}
	return tokenError(isSubject, reason, poolHidden{cause})
}

// isPoolHidden reports whether e is a hidePool refusal.
func isPoolHidden(e *oauth2.Error) bool {
	_, ok := errors.AsType[poolHidden](e.Err)
	return ok
}
