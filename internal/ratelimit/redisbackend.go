package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of RedisOptions.
const (
	DefaultRedisPrefix     = "sts:rl:"
	DefaultRedisTimeout    = 100 * time.Millisecond
	DefaultRedisBackoff    = time.Second
	DefaultRedisCheckEvery = 5 * time.Second
	DefaultRedisLogEvery   = time.Minute
)

// RedisOptions tune NewRedisBackend; the zero value means the defaults.
type RedisOptions struct {
	// Prefix namespaces every key; default DefaultRedisPrefix. A bucket
	// is stored under "rate:" (redis_rate's own prefix) + Prefix + limit
	// name + ":" + key, and expires once it is full again.
	Prefix string
	// Timeout bounds each call to Redis, connecting included; a slower
	// call is decided in memory. Default DefaultRedisTimeout.
	Timeout time.Duration
	// Backoff is how long after a failed call every decision goes
	// straight to memory before one call probes Redis again, so a down
	// Redis costs one Timeout per Backoff, not one per request. Default
	// DefaultRedisBackoff.
	Backoff time.Duration
	// CheckEvery is how often Run probes Redis, so Up stays current and a
	// recovery is noticed without traffic. Default DefaultRedisCheckEvery.
	CheckEvery time.Duration
	// LogEvery bounds the warnings while Redis is unavailable to one per
	// LogEvery (no log storm). Default DefaultRedisLogEvery.
	LogEvery time.Duration
	// Logger receives those warnings; nil discards them. Lines name the
	// server by host:port only, never by URL (it may hold a password).
	Logger *slog.Logger
	// OnFallback, when set, is called with the limit's name for every
	// decision made in memory because Redis was unavailable (a metric).
	OnFallback func(limit string)
}

// RedisBackend is one Redis server shared by Redis limiters, with the
// state that keeps a failing server off the request path: after a failed
// or slow call it is marked down and, for Backoff, every limiter decides
// in memory without trying it; then a single call (or Run's check) probes
// it, and the first probe that succeeds brings every limiter back to Redis.
// It is safe for concurrent use.
type RedisBackend struct {
	client     *redis.Client
	gcra       *redis_rate.Limiter
	addr       string
	password   string
	prefix     string
	timeout    time.Duration
	backoff    time.Duration
	checkEvery time.Duration
	onFallback func(string)
	epoch      time.Time // openUntil is monotonic time since epoch

	up         atomic.Bool
	closed     atomic.Bool
	probing    atomic.Bool
	openUntil  atomic.Int64
	fallbacks  atomic.Uint64
	roundTrips atomic.Uint64

	log logState
}

// NewRedisBackend connects lazily to the server of rawURL
// (redis://[[user]:password@]host[:port][/db], or rediss:// for TLS): it
// does no I/O, so a Redis that is down at start-up only degrades the
// limits. The error never repeats the URL, which may hold a password.
func NewRedisBackend(rawURL string, o RedisOptions) (*RedisBackend, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return nil, errors.New("ratelimit: redis URL is not a valid URL")
		}
		return nil, fmt.Errorf("ratelimit: redis URL: %w", err)
	}
	b := &RedisBackend{
		addr:       opt.Addr,
		password:   opt.Password,
		prefix:     cmp.Or(o.Prefix, DefaultRedisPrefix),
		timeout:    cmp.Or(o.Timeout, DefaultRedisTimeout),
		backoff:    cmp.Or(o.Backoff, DefaultRedisBackoff),
		checkEvery: cmp.Or(o.CheckEvery, DefaultRedisCheckEvery),
		onFallback: o.OnFallback,
		epoch:      time.Now(),
	}
	b.log = logState{logger: o.Logger, every: cmp.Or(o.LogEvery, DefaultRedisLogEvery)}
	if b.log.logger == nil {
		b.log.logger = slog.New(slog.DiscardHandler)
	}
	// Every wait is bounded by Timeout: the per-call context (honoured
	// for reads, writes and dials), the pool wait and each timeout below.
	// No retries: a retry cannot fit in the bound, and a retried script
	// whose first reply was lost would take two tokens.
	opt.ContextTimeoutEnabled = true
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = b.timeout, b.timeout, b.timeout, b.timeout
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	// Fewer round trips when connecting, and nothing Redis 7.0 lacks.
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	b.client = redis.NewClient(opt)
	b.gcra = redis_rate.NewLimiter(b.client)
	b.up.Store(true) // until a call says otherwise
	return b, nil
}

// Addr returns the server's host:port, safe to log.
func (b *RedisBackend) Addr() string { return b.addr }

// Up reports whether the last call to Redis succeeded: false while
// decisions are made in memory.
func (b *RedisBackend) Up() bool { return b.up.Load() && !b.closed.Load() }

// RoundTrips returns how many commands this backend has sent to Redis
// (each one round trip).
func (b *RedisBackend) RoundTrips() uint64 { return b.roundTrips.Load() }

// Fallbacks returns how many decisions were made in memory because Redis
// was unavailable.
func (b *RedisBackend) Fallbacks() uint64 { return b.fallbacks.Load() }

// Run probes Redis every CheckEvery until ctx ends, so Up is current when
// there is no traffic and a recovered server is used again within
// CheckEvery even if no request probes it.
func (b *RedisBackend) Run(ctx context.Context) {
	t := time.NewTicker(b.checkEvery)
	defer t.Stop()
	for {
		b.check()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close closes the connections; limiters then decide in memory.
func (b *RedisBackend) Close() error {
	b.closed.Store(true)
	return b.client.Close()
}

// healthLimit is the bucket Run's probe takes a token from: a thousand a
// second, far more than the replicas' probes take, so the probe is always
// allowed and always writes the bucket's key, which expires a second later.
var healthLimit = redis_rate.Limit{Rate: 1000, Burst: 1000, Period: time.Second}

// check is Run's probe: it behaves like one request's call, so it never
// probes while the breaker is open. It runs the real script and takes a
// token, so that it writes as every allowed decision does: a server that
// answers reads but refuses writes (a replica after a failover, READONLY;
// a full one under maxmemory noeviction, OOM; a user without write
// rights) decides nothing and is down, not up (docs/security.md F-93). A
// probe at cost 0 wrote nothing and called such a server up every
// CheckEvery.
func (b *RedisBackend) check() {
	probe, ok := b.admit()
	if !ok {
		return
	}
	_, err := b.call(func(ctx context.Context) (*redis_rate.Result, error) {
		return b.gcra.Allow(ctx, b.prefix+"health", healthLimit)
	})
	b.done(probe, err)
}

// allow runs the GCRA script for key, or reports false when the decision
// must be made in memory.
func (b *RedisBackend) allow(key string, limit redis_rate.Limit) (*redis_rate.Result, bool) {
	probe, ok := b.admit()
	if !ok {
		return nil, false
	}
	res, err := b.call(func(ctx context.Context) (*redis_rate.Result, error) {
		return b.gcra.Allow(ctx, key, limit)
	})
	b.done(probe, err)
	return res, err == nil
}

// admit says whether a call may go to Redis now, and whether it is the
// single probe after a backoff.
func (b *RedisBackend) admit() (probe, ok bool) {
	if b.closed.Load() {
		return false, false
	}
	if b.up.Load() {
		return false, true
	}
	if int64(time.Since(b.epoch)) < b.openUntil.Load() {
		return false, false
	}
	if b.probing.CompareAndSwap(false, true) {
		return true, true
	}
	return false, false
}

// call runs one bounded command. A reply redis_rate cannot read (its
// parser type-asserts) is an error too, not a panic on the request path.
func (b *RedisBackend) call(f func(context.Context) (*redis_rate.Result, error)) (res *redis_rate.Result, err error) {
	b.roundTrips.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("unexpected reply from redis: %v", p)
		}
	}()
	return f(ctx)
}

// done records a call's outcome. Only a probe brings Redis back: a call
// that started before a failure and succeeds after it says nothing about
// the server now.
func (b *RedisBackend) done(probe bool, err error) {
	if err == nil {
		if probe {
			if !b.up.Swap(true) {
				b.log.up(b.addr)
			}
			b.probing.Store(false)
		}
		return
	}
	if b.closed.Load() {
		return
	}
	// openUntil before up: a caller that sees up false sees the backoff.
	b.openUntil.Store(int64(time.Since(b.epoch) + b.backoff))
	wasUp := b.up.Swap(false)
	if probe {
		b.probing.Store(false)
	}
	b.log.down(b.addr, b.scrub(err), wasUp, b.fallbacks.Load())
}

// fellBack counts one decision made in memory.
func (b *RedisBackend) fellBack(limit string) {
	if b.closed.Load() {
		return
	}
	b.fallbacks.Add(1)
	if b.onFallback != nil {
		b.onFallback(limit)
	}
}

// scrub is defense in depth: no error text seen carries the password, but
// one never reaches a log if it does.
func (b *RedisBackend) scrub(err error) string {
	s := err.Error()
	if b.password != "" {
		s = strings.ReplaceAll(s, b.password, "[redacted]")
	}
	return s
}
