package trust

import "errors"

// Reason is a stable, machine-readable cause of a pool-selection refusal
// (docs/design.md#trust-decisions-and-errors); the grant puts it in the response, the log line and the
// metric label.
type Reason string

// Reasons returned by the Registry.
const (
	ReasonPoolUnknown      Reason = "pool_unknown"      // no pool with that ID (or the resource name is malformed)
	ReasonPoolDisabled     Reason = "pool_disabled"     // the pool is disabled (docs/security.md T-57)
	ReasonProviderUnknown  Reason = "provider_unknown"  // no such provider in the pool
	ReasonProviderDisabled Reason = "provider_disabled" // the provider is disabled
	ReasonIssuerUnknown    Reason = "issuer_unknown"    // no enabled provider trusts the token's iss
	ReasonAudienceMismatch Reason = "audience_mismatch" // the iss is trusted, but for none of the token's aud values
	ReasonAmbiguousPool    Reason = "ambiguous_pool"    // more than one pool trusts (iss, aud): name one
	ReasonPolicyInvalid    Reason = "policy_invalid"    // the pool's CEL failed to compile: it refuses everything
	ReasonUnavailable      Reason = "trust_unavailable" // storage could not be read and no snapshot young enough exists (docs/security.md F-108)
)

// Error is what the Registry returns; its message never contains token
// material.
type Error struct {
	Reason Reason
	// Pool is the pool the refusal is about when the request named one
	// that exists, is enabled and compiled (a provider refused, or its
	// policy invalid); nil otherwise. The token endpoint tells only those
	// entitled to know that pool why it refused (docs/security.md T-102).
	Pool *Pool
	// OrgID is the organization of the pool the refusal is about, also
	// when Pool is withheld (a disabled pool); "" when no pool is (an
	// unknown one). It never reaches the caller: the audit trail keeps a
	// refusal about another organization's pool out of the caller's
	// (docs/security.md D-19).
	OrgID string
	msg   string
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "trust: " + e.msg + ": " + e.Err.Error()
	}
	return "trust: " + e.msg
}

func (e *Error) Unwrap() error { return e.Err }

func newError(r Reason, msg string, cause error) *Error {
	return &Error{Reason: r, msg: msg, Err: cause}
}

// ReasonOf returns the Reason carried by err, or "" when err is not from
// this package.
func ReasonOf(err error) Reason {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return ""
}

// PoolOf returns the pool a refusal from this package is about (Error.Pool),
// or nil.
func PoolOf(err error) *Pool {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Pool
	}
	return nil
}

// OrgOf returns the organization of the pool a refusal from this package
// is about (Error.OrgID, or its Pool's), or "".
func OrgOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		if e.OrgID != "" {
			return e.OrgID
		}
		if e.Pool != nil {
			return e.Pool.OrgID
		}
	}
	return ""
}
