package grants

import (
	"net/http"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ratelimit"
)

// limitedError carries the binding decision to the writer. It is the Err
// of a 429 *oauth2.Error.
type limitedError struct {
	d ratelimit.Decision
}

func (e *limitedError) Error() string { return "rate limited" }

// rateState is one request's rate limits (docs/security.md T-10): the
// buckets of its source IP, its authenticated client and its pool, taken
// in that order, stopping at the first refusal, so that a request refused
// per IP costs its client's and pool's buckets nothing and one refused per
// client costs its pool's nothing. The headers describe the tightest
// bucket (ratelimit.Tighter).
//
// A bucket is owed once the request has one (the IP from the start, the
// client once authenticated) and charged together with the next, in one
// ratelimit.Limits call (one Redis round trip for all of them): at the
// latest before the work it protects (pay), with the pool's once the pool
// is known (payWithPool), and, whatever happens, before the answer
// (handler.run). What may run while the IP is owed is bounded and reads
// nothing: the body (at most MaxBodyBytes), the unverified subject token,
// the trust registry's snapshot in memory (trust.Registry.Lookup). Client
// authentication, storage, key sets and signatures come after a payment.
type rateState struct {
	limits ratelimit.Limits
	w      http.ResponseWriter
	d      ratelimit.Decision
	// ip and client are owed: known, not yet charged.
	ip, client string
	// byIP: the request was refused by its IP's bucket.
	byIP bool
}

// pay charges the buckets owed, if any.
func (s *rateState) pay() error {
	if s == nil || (s.ip == "" && s.client == "") {
		return nil
	}
	return s.payWithPool("")
}

// payWithPool charges the buckets owed and pool's (empty: none). Call it
// before any signature is verified: a flood costs a bucket, not an RSA
// verification.
func (s *rateState) payWithPool(pool string) error {
	if s == nil {
		return nil
	}
	ip, client := s.ip, s.client
	s.ip, s.client = "", ""
	d, by := s.limits.AllowBy(ip, client, pool)
	if d.Limit == 0 {
		return nil
	}
	s.d = ratelimit.Tighter(s.d, d)
	ratelimit.WriteHeaders(s.w.Header(), s.d)
	if d.Allowed {
		return nil
	}
	s.byIP = by == ratelimit.IP
	return &oauth2.Error{Code: oauth2.ErrorTemporarilyUnavailable, Description: descLimited, Reason: ReasonRateLimited,
		Status: http.StatusTooManyRequests, Err: &limitedError{d: d}}
}

// seconds rounds up, so a client that waits that long is admitted.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
