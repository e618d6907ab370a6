package ratelimit

// Key prefixes Limits composes, so that one shared keyspace (a Redis
// backend) can hold every dimension.
const (
	PrefixIP     = "ip:"
	PrefixClient = "client:"
	PrefixPool   = "pool:"
)

// Limits are the limits on token requests: per source IP, per
// client and per pool. A nil Limiter disables its dimension.
type Limits struct {
	PerIP     Limiter
	PerClient Limiter
	PerPool   Limiter
}

// Allow checks the source IP (bucketed by [IPBucket]: per address for
// IPv4, per /64 for IPv6), then the client, then the pool (an empty
// value skips its check) and stops at the first denial, so a request
// refused per IP costs nothing from its client's or pool's bucket. The
// result is the Tighter of the decisions made; write it with WriteHeaders.
// Call it before any signature verification: a limit protects the CPU that
// verification costs.
func (l Limits) Allow(ip, client, pool string) Decision {
	d, _ := l.AllowBy(ip, client, pool)
	return d
}

// Dimension names one bucket of Limits.
type Dimension int

// The dimensions, in the order Limits checks them.
const (
	None Dimension = iota
	IP
	Client
	Pool
)

// AllowBy is Allow, and also names the bucket that refused (None when the
// request is allowed).
func (l Limits) AllowBy(ip, client, pool string) (Decision, Dimension) {
	checks := [...]check{{l.PerIP, PrefixIP, ipKey(ip), IP}, {l.PerClient, PrefixClient, client, Client}, {l.PerPool, PrefixPool, pool, Pool}}
	// Every dimension in Redis: one round trip for all of them, same
	// semantics (TestRedisLimitsOneRoundTrip).
	if d, by, ok := l.allowRedis(checks[:]); ok {
		return d, by
	}
	d := Decision{Allowed: true}
	for _, c := range checks {
		if c.lim == nil || c.value == "" {
			continue
		}
		d = Tighter(d, c.lim.Allow(c.prefix+c.value))
		if !d.Allowed {
			return d, c.dim
		}
	}
	return d, None
}

// check is one dimension of Limits.Allow.
type check struct {
	lim    Limiter
	prefix string
	value  string
	dim    Dimension
}

func ipKey(ip string) string {
	if ip == "" {
		return ""
	}
	return IPBucket(ip)
}
