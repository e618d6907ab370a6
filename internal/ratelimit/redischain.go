package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// chainScript is redis_rate's GCRA script (allowN, cost 1) run over up to
// three buckets in order in one call, stopping at the first denial, so that
// Limits.Allow with every dimension in Redis costs one round trip instead
// of one per bucket, with the same semantics: the same keys ("rate:" +
// limit prefix + key, so single-bucket calls share them), the same
// arithmetic on the server's clock, and a refused bucket ends the chain
// before the next one is charged. It returns four values per bucket
// checked: allowed (0 or 1), remaining, retry_after and reset_after (in
// seconds, as strings), exactly as redis_rate's script does.
// TestRedisLimitsOneRoundTrip holds it to the in-memory limits' decisions.
var chainScript = redis.NewScript(`
redis.replicate_commands()
local jan_1_2017 = 1483228800
local t = redis.call("TIME")
local now = (t[1] - jan_1_2017) + (t[2] / 1000000)
local out = {}
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local period = tonumber(ARGV[3 * i])
  local emission_interval = period / rate
  local increment = emission_interval
  local burst_offset = emission_interval * burst
  local tat = redis.call("GET", key)
  if not tat then tat = now else tat = tonumber(tat) end
  tat = math.max(tat, now)
  local new_tat = tat + increment
  local allow_at = new_tat - burst_offset
  local diff = now - allow_at
  local remaining = diff / emission_interval
  if remaining < 0 then
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, tostring(diff * -1))
    table.insert(out, tostring(tat - now))
    return out
  end
  local reset_after = new_tat - now
  if reset_after > 0 then
    redis.call("SET", key, new_tat, "EX", math.ceil(reset_after))
  end
  table.insert(out, 1)
  table.insert(out, remaining)
  table.insert(out, "-1")
  table.insert(out, tostring(reset_after))
end
return out
`)

// gcraReply is one bucket's answer from chainScript.
type gcraReply struct {
	allowed           bool
	remaining         int
	retryAfter, reset time.Duration
}

// allowChain runs chainScript over keys (full bucket names, without
// redis_rate's "rate:") with their limits, or reports false when the
// decision must be made in memory. The replies cover the buckets up to and
// including the first refusal.
func (b *RedisBackend) allowChain(keys []string, limits []redis_rate.Limit) ([]gcraReply, bool) {
	probe, ok := b.admit()
	if !ok {
		return nil, false
	}
	b.roundTrips.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	full := make([]string, len(keys))
	args := make([]any, 0, 3*len(keys))
	for i, k := range keys {
		full[i] = "rate:" + k
		args = append(args, limits[i].Burst, limits[i].Rate, limits[i].Period.Seconds())
	}
	v, err := chainScript.Run(ctx, b.client, full, args...).Slice()
	var out []gcraReply
	if err == nil {
		out, err = parseChain(v, len(keys))
	}
	b.done(probe, err)
	return out, err == nil
}

// parseChain reads chainScript's flat reply; anything unexpected is an
// error (the decision then falls back to memory), never a panic.
func parseChain(v []any, max int) ([]gcraReply, error) {
	if len(v) == 0 || len(v)%4 != 0 || len(v)/4 > max {
		return nil, fmt.Errorf("unexpected reply from redis: %d values", len(v))
	}
	out := make([]gcraReply, len(v)/4)
	for i := range out {
		allowed, ok1 := v[4*i].(int64)
		remaining, ok2 := v[4*i+1].(int64)
		retry, ok3 := v[4*i+2].(string)
		reset, ok4 := v[4*i+3].(string)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, fmt.Errorf("unexpected reply from redis: %T %T %T %T", v[4*i], v[4*i+1], v[4*i+2], v[4*i+3])
		}
		r, err1 := strconv.ParseFloat(retry, 64)
		s, err2 := strconv.ParseFloat(reset, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("unexpected reply from redis: %q %q", retry, reset)
		}
		out[i] = gcraReply{allowed: allowed > 0, remaining: int(remaining), retryAfter: replySeconds(r), reset: replySeconds(s)}
	}
	return out, nil
}

// replySeconds is redis_rate's conversion of a reply's float seconds; -1 stays
// negative (fromGCRA ignores RetryAfter when allowed).
func replySeconds(f float64) time.Duration {
	if f == -1 {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}

// allowRedis decides Limits.AllowBy in one round trip when every dimension
// to check is a Redis limiter on the same backend and there is more than
// one; ok is false when it does not apply (the caller then checks the
// dimensions one by one).
func (l Limits) allowRedis(checks []check) (Decision, Dimension, bool) {
	var b *RedisBackend
	n := 0
	var rs [3]*Redis
	var cs [3]check
	for _, c := range checks {
		if c.lim == nil || c.value == "" {
			continue
		}
		r, ok := c.lim.(*Redis)
		if !ok || (b != nil && r.b != b) {
			return Decision{}, None, false
		}
		if !r.rule.Enabled() {
			continue
		}
		b = r.b
		rs[n], cs[n] = r, c
		n++
	}
	if n < 2 {
		return Decision{}, None, false
	}
	var keys [3]string
	var limits [3]redis_rate.Limit
	for i, r := range rs[:n] {
		keys[i], limits[i] = r.prefix+cs[i].prefix+cs[i].value, r.limit
	}
	d := Decision{Allowed: true}
	replies, ok := b.allowChain(keys[:n], limits[:n])
	if !ok {
		// Redis is unavailable: each bucket decides in memory, in order,
		// as Redis.Allow would.
		for i, r := range rs[:n] {
			r.b.fellBack(r.name)
			d = Tighter(d, r.fallback.Allow(cs[i].prefix+cs[i].value))
			if !d.Allowed {
				return d, cs[i].dim, true
			}
		}
		return d, None, true
	}
	for i, rep := range replies {
		d = Tighter(d, fromGCRA(rs[i].rule, rep.allowed, rep.remaining, rep.reset, rep.retryAfter))
		if !d.Allowed {
			return d, cs[i].dim, true
		}
	}
	return d, None, true
}
