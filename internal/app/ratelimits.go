package app

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/revoke"
)

// rateLimits are the limiters rate_limits configures: the token
// endpoints' (per IP, client, pool), which the bearer API's procedures
// that sign for a credential share (api.Handler.SetTokenLimits), and the
// leak report's.
type rateLimits struct {
	token ratelimit.Limits
	// leak is nil in memory mode: revoke keeps its own default.
	leak ratelimit.Limiter
	// public is the per-IP bucket of the Connect API's public
	// ExchangeToken in Redis (api.Handler.SetPublicLimit), shared by the
	// replicas as the others are (docs/security.md T-155); nil in memory
	// mode, where the API keeps its own in this replica's memory.
	public ratelimit.Limiter
	// redis is the shared backend, nil without rate_limits.redis_url. Its
	// Run keeps sts_ratelimit_redis_up current.
	redis *ratelimit.RedisBackend
}

// newRateLimits builds the limiters: in memory, per replica, or, with
// redis_url, in Redis shared by every replica (docs/design.md#storage-and-replicas), each falling
// back to a per-replica memory limit while Redis is down or slower than
// redis_timeout (docs/security.md F-15). The fallbacks are counted in
// sts_ratelimit_fallback_total{limit} and the server's state is the gauge
// sts_ratelimit_redis_up; /readyz does not depend on Redis (degraded, not
// unready).
func newRateLimits(c config.RateLimitsConfig, logger *slog.Logger, reg prometheus.Registerer) (*rateLimits, error) {
	if c.RedisURL == "" {
		return &rateLimits{token: ratelimit.Limits{
			PerIP:     limiter(c.PerIP, c.MaxKeys),
			PerClient: limiter(c.PerClient, c.MaxKeys),
			PerPool:   limiter(c.PerPool, c.MaxKeys),
		}}, nil
	}
	fallbacks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_ratelimit_fallback_total",
		Help: "Rate-limit decisions made in per-replica memory because Redis failed, was slower than rate_limits.redis_timeout or was being backed off after a failure (docs/security.md F-15), by limit.",
	}, []string{"limit"})
	b, err := ratelimit.NewRedisBackend(c.RedisURL.Reveal(), ratelimit.RedisOptions{
		Timeout:    c.RedisTimeout,
		Logger:     logger,
		OnFallback: func(limit string) { fallbacks.WithLabelValues(limit).Inc() },
	})
	if err != nil {
		return nil, fmt.Errorf("rate_limits.redis_url: %w", err)
	}
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sts_ratelimit_redis_up",
		Help: "1 while the rate-limit Redis answers and takes tokens (limits shared by every replica), 0 while decisions fall back to per-replica memory.",
	}, func() float64 {
		if b.Up() {
			return 1
		}
		return 0
	})
	reg.MustRegister(fallbacks, up)
	ratelimit.RouteRedisLogs(logger)
	logger.Info("rate limits are shared in redis", "redis", b.Addr(), "timeout", c.RedisTimeout.String())

	shared := func(name string, lc config.RateLimitConfig) ratelimit.Limiter {
		rule := ratelimit.Rule{Rate: lc.Rate, Burst: lc.Burst}
		if !rule.Enabled() {
			return nil
		}
		return b.Limiter(name, rule, ratelimit.MemoryOptions{MaxKeys: c.MaxKeys})
	}
	return &rateLimits{
		token: ratelimit.Limits{
			PerIP:     shared("per_ip", c.PerIP),
			PerClient: shared("per_client", c.PerClient),
			PerPool:   shared("per_pool", c.PerPool),
		},
		leak:   b.Limiter("leak_report", revoke.LeakRule(), ratelimit.MemoryOptions{MaxKeys: c.MaxKeys}),
		public: shared("public_per_ip", c.PerIP),
		redis:  b,
	}, nil
}
