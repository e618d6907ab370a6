package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// WriteHeaders sets the rate-limit response headers for d on h:
//
//   - X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset, the
//     Confluent form (Confluent STS): Reset is relative seconds, not an epoch
//     time, to avoid clock-synchronisation issues;
//   - RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset, the IETF
//     form (draft-ietf-httpapi-ratelimit-headers), also relative seconds;
//   - Retry-After (RFC 9110 §10.2.3, delay-seconds) when d is a denial.
//
// A decision of a disabled rule (Limit 0) writes nothing.
func WriteHeaders(h http.Header, d Decision) {
	if d.Limit == 0 {
		return
	}
	limit := strconv.Itoa(d.Limit)
	remaining := strconv.Itoa(d.Remaining)
	reset := strconv.FormatInt(ceilSeconds(d.Reset), 10)
	h.Set("X-RateLimit-Limit", limit)
	h.Set("X-RateLimit-Remaining", remaining)
	h.Set("X-RateLimit-Reset", reset)
	h.Set("RateLimit-Limit", limit)
	h.Set("RateLimit-Remaining", remaining)
	h.Set("RateLimit-Reset", reset)
	if !d.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}
