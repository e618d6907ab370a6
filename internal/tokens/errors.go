package tokens

import (
	"errors"
	"fmt"

	"github.com/opensts/sts/internal/sts"
)

// Verification failures. Every error VerifyAccessToken returns for a bad
// token is an [*sts.Error] with code [sts.Unauthenticated] and the generic
// message "invalid token" (docs/security.md T-68: no enumeration through
// descriptions) whose cause wraps one of these; [Reason] maps it to the
// stable machine reason of docs/design.md#trust-decisions-and-errors.
var (
	ErrMalformed      = errors.New("token malformed")
	ErrAlgorithm      = errors.New("algorithm not allowed")
	ErrHeader         = errors.New("header not allowed")
	ErrType           = errors.New("wrong token type")
	ErrUnknownKey     = errors.New("unknown key id")
	ErrSignature      = errors.New("signature invalid")
	ErrIssuer         = errors.New("issuer mismatch")
	ErrExpired        = errors.New("token expired")
	ErrNotYetValid    = errors.New("token not yet valid")
	ErrIssuedInFuture = errors.New("token issued in the future")
	ErrLifetime       = errors.New("token lifetime too long")
	ErrAudience       = errors.New("audience mismatch")
	ErrRevoked        = errors.New("token revoked")
	// ErrSourceGone: what the token was derived from (its principal, its
	// personal access token) is deleted, disabled or regenerated.
	ErrSourceGone = errors.New("token source gone")
	// ErrSessionEnded: the browser session a refresh family is bound to
	// has ended (docs/security.md A-99).
	ErrSessionEnded = errors.New("session not active")
)

var reasons = []struct {
	err    error
	reason string
}{
	{ErrMalformed, "token_malformed"},
	{ErrAlgorithm, "alg_not_allowed"},
	{ErrHeader, "header_not_allowed"},
	{ErrType, "token_type_mismatch"},
	{ErrUnknownKey, "kid_unknown"},
	{ErrSignature, "signature_invalid"},
	{ErrIssuer, "issuer_mismatch"},
	{ErrExpired, "token_expired"},
	{ErrNotYetValid, "token_not_yet_valid"},
	{ErrIssuedInFuture, "token_issued_in_future"},
	{ErrLifetime, "token_lifetime_too_long"},
	{ErrAudience, "audience_mismatch"},
	{ErrRevoked, "token_revoked"},
	{ErrSourceGone, "token_source_gone"},
	{ErrSessionEnded, "session_not_active"},
	{ErrSourceUnavailable, "source_unavailable"},
}

// Reason returns the stable machine reason for a verification error
// ("token_expired", "kid_unknown", "token_source_gone", …),
// "source_unavailable" when the source check could not run,
// "revocation_unavailable" when the revocation check could not run, or "" when err is none of these.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	if sts.ErrorCode(err) == sts.Unavailable {
		return "revocation_unavailable"
	}
	return ""
}

// invalid wraps a verification failure: sentinel plus detail for logs.
func invalid(sentinel error, format string, args ...any) error {
	cause := sentinel
	if format != "" {
		cause = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	}
	return &sts.Error{Code: sts.Unauthenticated, Message: "invalid token", Err: cause}
}
