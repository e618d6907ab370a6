package ratelimit

import (
	"math"
	"time"
)

// Rule is one token bucket: Rate requests per second on average, with up to
// Burst at once. A zero Rate or Burst disables the rule.
type Rule struct {
	Rate  float64
	Burst int
}

// Enabled reports whether the rule limits anything.
func (r Rule) Enabled() bool { return r.Rate > 0 && r.Burst > 0 }

// Decision is the outcome of one Allow, with what the response headers say.
// A disabled rule yields Allowed true and Limit 0 (no headers).
type Decision struct {
	Allowed bool
	// Limit is the bucket size (the burst): the most requests that may pass
	// at once.
	Limit int
	// Remaining is how many more requests may pass right now.
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter is how long until the next request may pass; zero when
	// one may pass now.
	RetryAfter time.Duration
}

// Limiter decides, per key, whether one more request may pass.
// Implementations must be safe to call concurrently. A shared backend that
// fails should fall back to a local limit rather than allow everything
// (docs/security.md F-15).
type Limiter interface {
	Allow(key string) Decision
}

// Tighter returns whichever decision leaves the caller less room: a denial
// over an allowance, then the lower Remaining. Combining the per-IP,
// per-client and per-pool decisions with it gives the headers of the limit
// that binds.
func Tighter(a, b Decision) Decision {
	switch {
	case a.Limit == 0:
		return b
	case b.Limit == 0:
		return a
	case a.Allowed != b.Allowed:
		if !a.Allowed {
			return a
		}
		return b
	case !a.Allowed:
		if a.RetryAfter >= b.RetryAfter {
			return a
		}
		return b
	case a.Remaining <= b.Remaining:
		return a
	}
	return b
}

// decide builds the Decision after a bucket with rule r took (or refused)
// one token and has tokens left.
func decide(r Rule, allowed bool, tokens float64) Decision {
	d := Decision{Allowed: allowed, Limit: r.Burst}
	if tokens > 0 {
		d.Remaining = int(math.Floor(tokens))
	}
	d.Reset = seconds((float64(r.Burst) - tokens) / r.Rate)
	if !allowed {
		d.RetryAfter = max(seconds((1-tokens)/r.Rate), time.Nanosecond)
	}
	return d
}

func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
