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

// rateState accumulates one request's decisions (IP, then client, then
// pool) so the headers describe the tightest bucket (ratelimit.Tighter).
type rateState struct {
	limits ratelimit.Limits
	w      http.ResponseWriter
	d      ratelimit.Decision
}

// check takes one token from the named buckets (empty values skip theirs).
// Limits are checked before any signature is verified (docs/security.md T-10): a
// flood costs a map lookup, not an RSA verification.
func (s *rateState) check(ip, client, pool string) error {
	d := s.limits.Allow(ip, client, pool)
	if d.Limit == 0 {
		return nil
	}
	s.d = ratelimit.Tighter(s.d, d)
	ratelimit.WriteHeaders(s.w.Header(), s.d)
	if d.Allowed {
		return nil
	}
	return &oauth2.Error{Code: oauth2.ErrorTemporarilyUnavailable, Description: descLimited, Reason: ReasonRateLimited,
		Status: http.StatusTooManyRequests, Err: &limitedError{d: d}}
}

// seconds rounds up, so a client that waits that long is admitted.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
