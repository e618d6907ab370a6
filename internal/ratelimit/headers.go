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
	// One backing array for the three values, each header a one-element
	// slice of it (capacity 1, so an Add elsewhere copies rather than
	// writing into its neighbour), under keys already canonical: Set would
	// canonicalize "X-RateLimit-…" anew and allocate a slice per header on
	// every request (TestWriteHeadersAllocs). The three numbers are
	// formatted into one buffer on the stack and become one string, sliced
	// three ways: strconv allocates each number of 100 or more on its own
	// (docs/performance.md, "client_credentials, eighth pass").
	var buf [3 * 20]byte
	b := strconv.AppendInt(buf[:0], int64(d.Limit), 10)
	i := len(b)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	j := len(b)
	b = strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
	all := string(b)
	v := &[3]string{all[:i], all[i:j], all[j:]}
	limit, remaining, reset := v[0:1:1], v[1:2:2], v[2:3:3]
	h[hdrXLimit], h[hdrXRemaining], h[hdrXReset] = limit, remaining, reset
	h[hdrLimit], h[hdrRemaining], h[hdrReset] = limit, remaining, reset
	if !d.Allowed {
		h[hdrRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10)}
	}
}

// The header keys in canonical form (textproto.CanonicalMIMEHeaderKey).
const (
	hdrXLimit     = "X-Ratelimit-Limit"
	hdrXRemaining = "X-Ratelimit-Remaining"
	hdrXReset     = "X-Ratelimit-Reset"
	hdrLimit      = "Ratelimit-Limit"
	hdrRemaining  = "Ratelimit-Remaining"
	hdrReset      = "Ratelimit-Reset"
	hdrRetryAfter = "Retry-After"
)

func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}
