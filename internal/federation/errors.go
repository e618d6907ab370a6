package federation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// Reason is a stable, machine-readable cause of a refusal (docs/design.md#trust-decisions-and-errors). The
// token-exchange grant puts it in the response's reason field, log lines and
// metric labels. ReasonJWKSUnavailable is a server-side failure (503 with
// Retry-After, docs/security.md F-07); every other reason is the caller's token
// (400 invalid_request).
type Reason string

// Reasons returned by Verify and PeekIssuer.
const (
	ReasonIssuerUnknown        Reason = "issuer_unknown"          // no provider trusts this iss (used by the caller's pool selection)
	ReasonIssuerMismatch       Reason = "issuer_mismatch"         // iss differs from the provider's issuer (exact comparison)
	ReasonProviderDisabled     Reason = "provider_disabled"       // the provider is disabled
	ReasonTokenTooLarge        Reason = "token_too_large"         // longer than MaxTokenSize
	ReasonTokenMalformed       Reason = "token_malformed"         // not a well-formed compact JWS with JSON header and claims
	ReasonHeaderRejected       Reason = "header_rejected"         // crit, jku, x5u, jwk, x5c, cty, zip, b64 or a bad kid
	ReasonTokenTypeInvalid     Reason = "token_type_invalid"      // typ says access token (at+jwt): token-type confusion
	ReasonAlgNotAllowed        Reason = "alg_not_allowed"         // alg outside the provider's allowlist
	ReasonKIDMissing           Reason = "kid_missing"             // no kid and the key set has more than one key
	ReasonKIDUnknown           Reason = "kid_unknown"             // kid not in the issuer's key set, even after a refetch
	ReasonKeyMismatch          Reason = "key_mismatch"            // the key cannot be used with alg (kty, crv or JWK alg)
	ReasonSignatureInvalid     Reason = "signature_invalid"       // signature does not verify
	ReasonTokenExpired         Reason = "token_expired"           // now ≥ exp + leeway
	ReasonTokenNotYetValid     Reason = "token_not_yet_valid"     // nbf or iat after now + leeway
	ReasonTokenTooOld          Reason = "token_too_old"           // iat older than MaxTokenAge
	ReasonTokenLifetimeTooLong Reason = "token_lifetime_too_long" // exp − iat above MaxTokenAge
	ReasonAudienceMismatch     Reason = "audience_mismatch"       // no aud value is one of the provider's audiences
	ReasonClaimInvalid         Reason = "claim_invalid"           // a registered claim is missing or has the wrong type
	ReasonJWKSUnavailable      Reason = "jwks_unavailable"        // keys could not be obtained (or are older than MaxStale)
)

// Error is the error type of this package. Its message never contains token
// material; Reason is the stable code.
type Error struct {
	Reason Reason
	msg    string
	Err    error // cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "federation: " + e.msg + ": " + e.Err.Error()
	}
	return "federation: " + e.msg
}

func (e *Error) Unwrap() error { return e.Err }

// Unavailable reports whether the failure is ours (keys unavailable), not
// the caller's: answer 503 with Retry-After rather than 400.
func (e *Error) Unavailable() bool { return e.Reason == ReasonJWKSUnavailable }

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

// TokenDigest returns a short SHA-256 prefix of raw for log lines, so a token
// can be correlated without being logged.
func TokenDigest(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:8])
}
