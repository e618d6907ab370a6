package ratelimit

// Key prefixes Limits composes, so that one shared keyspace (a Redis
// backend) can hold every dimension.
const (
	PrefixIP     = "ip:"
	PrefixClient = "client:"
	PrefixPool   = "pool:"
	// PrefixPrincipal keys a principal's bucket in PerClient
	// (AllowCredential).
	PrefixPrincipal = "principal:"
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

// The dimensions, in the order Limits checks them. Principal is checked
// where Client would be (AllowCredential).
const (
	None Dimension = iota
	IP
	Client
	Pool
	Principal
)

// String names the dimension as logs and metrics do: "ip", "client",
// "pool", "principal", or "" for None.
func (d Dimension) String() string {
	switch d {
	case IP:
		return "ip"
	case Client:
		return "client"
	case Pool:
		return "pool"
	case Principal:
		return "principal"
	}
	return ""
}

// AllowBy is Allow, and also names the bucket that refused (None when the
// request is allowed).
func (l Limits) AllowBy(ip, client, pool string) (Decision, Dimension) {
	return l.allow([...]check{{l.PerIP, PrefixIP, ipKey(ip), IP}, {l.PerClient, PrefixClient, client, Client}, {l.PerPool, PrefixPool, pool, Pool}})
}

// AllowCredential is AllowBy for a request that presents a credential of
// ours rather than being judged by its address: the bearer API's
// procedures that sign a token for the caller (docs/security.md A-57). It
// takes the same buckets the token endpoint took when the credential was
// issued: the client's (the registered client the token was issued to),
// then the pool's (the pool it was exchanged at), stopping at the first
// denial. A credential with neither, a personal access token or a token
// issued to no client outside any pool, is charged to its principal
// instead, in PerClient under "principal:<id>" (PrefixPrincipal): a
// principal presenting its own credential stands where a client would,
// and no credential escapes every bucket. No per-IP bucket is taken.
func (l Limits) AllowCredential(client, pool, principal string) (Decision, Dimension) {
	caller := check{l.PerClient, PrefixClient, client, Client}
	if client == "" && pool == "" {
		caller = check{l.PerClient, PrefixPrincipal, principal, Principal}
	}
	return l.allow([...]check{caller, {l.PerPool, PrefixPool, pool, Pool}, {}})
}

// allow checks the buckets of checks in order (a nil limiter or an empty
// value skips one) and stops at the first denial.
func (l Limits) allow(checks [3]check) (Decision, Dimension) {
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
