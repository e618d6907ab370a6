package oauth2

import (
	"net/http"
	"strconv"
	"time"
)

// RetryAfter is the one Retry-After policy of every 503 this server sends
// (OAuth endpoints, the Google and Confluent dialects, the Connect APIs'
// unavailable errors, readiness, the JWKS and the token paths before the
// server is ready): a failing store, a sealed key set or a backend still
// starting is retried after this long (docs/api.md, "Errors").
const RetryAfter = 5 * time.Second

// RetryAfterValue is the Retry-After header value (RFC 9110 §10.2.3,
// delay-seconds) for d: whole seconds rounded up, at least 1, and
// [RetryAfter] when d is zero or negative.
func RetryAfterValue(d time.Duration) string {
	if d <= 0 {
		d = RetryAfter
	}
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}

// SetRetryAfter sets h's Retry-After to RetryAfterValue(d). Every 503
// answer sets it through here (or through [WriteError], which calls it).
func SetRetryAfter(h http.Header, d time.Duration) {
	h.Set("Retry-After", RetryAfterValue(d))
}
