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
	return s.charged(s.limits.AllowBy(ip, client, pool))
}

// payCredential charges the bucket of a credential of ours presented as
// the subject with no client authenticated and no pool to charge: the
// buckets its issuance took, client (a registered client's ID) or, with
// none, its principal's under "principal:<id>", as the bearer API charges
// the same credential (ratelimit.Limits.AllowCredential, docs/security.md
// A-57, T-239). Otherwise a PAT, or the access token it bought, was held
// back only per source address at the token endpoint, and one person
// signed as many tokens as they had addresses. Call it once the
// credential is verified (a forged one costs its principal nothing),
// after what the request owes is paid.
func (s *rateState) payCredential(client, principal string) error {
	if s == nil || (client == "" && principal == "") {
		return nil
	}
	return s.charged(s.limits.AllowCredential(client, "", principal))
}

// charged records one charge's decision: the tighter headers, and the
// refusal when a bucket was empty.
func (s *rateState) charged(d ratelimit.Decision, by ratelimit.Dimension) error {
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
