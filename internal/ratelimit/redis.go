package ratelimit

import (
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Redis is a Limiter whose buckets live in Redis, so every replica that
// names the same limit on the same server shares them: N replicas together
// admit the configured rate, not N times it (docs/design.md#storage-and-replicas).
//
// The bucket is redis_rate's GCRA, one Lua script run atomically on the
// server with the server's clock. The one script of our own,
// redischain.go, is that same script looped over the buckets of one
// request so that Limits.Allow costs one round trip. GCRA with emission interval 1/Rate and tolerance Burst/Rate admits
// exactly what Memory's token bucket admits, and its reply (remaining,
// reset, retry-after) fills the same Decision fields, so the headers and
// 429s are the same whichever backend decided.
//
// When Redis fails, is slower than the backend's Timeout, or is being
// backed off after a failure, the decision comes from a per-replica Memory
// with the same rule (docs/security.md F-15): degraded but bounded, never "allow
// everything" and never "refuse everything".
type Redis struct {
	b        *RedisBackend
	name     string
	rule     Rule
	prefix   string // backend prefix + name + ":"
	limit    redis_rate.Limit
	fallback *Memory
}

// Limiter returns the shared limit called name (it becomes part of every
// key, "sts:rl:<name>:<key>", so two limits never share a bucket) applying
// rule to every key. o tunes the in-memory fallback.
func (b *RedisBackend) Limiter(name string, rule Rule, o MemoryOptions) *Redis {
	return &Redis{
		b:        b,
		name:     name,
		rule:     rule,
		prefix:   b.prefix + name + ":",
		limit:    gcra(rule),
		fallback: NewMemory(rule, o),
	}
}

// Allow takes one token from key's shared bucket if it has one. It never
// waits longer than the backend's Timeout for Redis.
func (r *Redis) Allow(key string) Decision {
	if !r.rule.Enabled() {
		return Decision{Allowed: true}
	}
	if res, ok := r.b.allow(r.prefix+key, r.limit); ok {
		return fromGCRA(r.rule, res.Allowed > 0, res.Remaining, res.ResetAfter, res.RetryAfter)
	}
	r.b.fellBack(r.name)
	return r.fallback.Allow(key)
}

// fromGCRA builds the Decision of one GCRA reply: the same fields decide
// fills for Memory. redis_rate reports RetryAfter -1 when allowed.
func fromGCRA(rule Rule, allowed bool, remaining int, reset, retry time.Duration) Decision {
	d := Decision{Allowed: allowed, Limit: rule.Burst, Remaining: min(max(remaining, 0), rule.Burst), Reset: max(reset, 0)}
	if !allowed {
		d.Remaining = 0
		d.RetryAfter = max(retry, time.Nanosecond)
	}
	return d
}

// maxPeriod keeps a tiny rate's emission interval inside a Duration.
const maxPeriod = time.Duration(math.MaxInt64 / 2)

// gcra expresses rule as redis_rate's integer Rate per Period: whole rates
// per second as they are, fractional ones as one event per 1/Rate seconds
// (0.5 → 1 per 2 s, 1/12 → 1 per 12 s).
func gcra(r Rule) redis_rate.Limit {
	if !r.Enabled() {
		return redis_rate.Limit{}
	}
	if r.Rate == math.Trunc(r.Rate) && r.Rate <= math.MaxInt32 {
		return redis_rate.Limit{Rate: int(r.Rate), Burst: r.Burst, Period: time.Second}
	}
	period := float64(time.Second) / r.Rate
	if period > float64(maxPeriod) {
		period = float64(maxPeriod)
	}
	return redis_rate.Limit{Rate: 1, Burst: r.Burst, Period: time.Duration(period)}
}
