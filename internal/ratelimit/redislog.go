package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// logState throttles the backend's log lines: at most one warning per
// every while Redis is down, and one "available again" only after a
// warning, so a flapping server writes at most two lines per every.
type logState struct {
	logger *slog.Logger
	every  time.Duration

	mu        sync.Mutex
	last      time.Time // last warning
	warned    bool      // a warning was written since Redis was last up
	downSince time.Time
}

func (l *logState) down(addr, err string, wasUp bool, fallbacks uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if wasUp {
		l.downSince = now
	}
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		return
	}
	msg := "rate limits: redis unavailable; deciding in per-replica memory until it answers (degraded, docs/security.md F-15)"
	if l.warned {
		msg = "rate limits: redis still unavailable; deciding in per-replica memory"
	}
	l.last, l.warned = now, true
	l.logger.Warn(msg, "redis", addr, "error", err, "down_for", now.Sub(l.downSince).Round(time.Millisecond).String(),
		"fallback_decisions", fallbacks)
}

func (l *logState) up(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.warned {
		return
	}
	l.warned = false
	l.logger.Info("rate limits: redis is available again; limits are shared", "redis", addr,
		"down_for", time.Since(l.downSince).Round(time.Millisecond).String())
}

// RouteRedisLogs sends the Redis client library's own log lines (it logs
// every failed dial) to logger at debug level instead of plain lines on
// stderr, which would break a JSON log stream and repeat what the backend
// already logs, throttled. The library's logger is process-wide, so this
// is for the composition root to call once.
func RouteRedisLogs(logger *slog.Logger) {
	redis.SetLogger(libraryLog{logger})
}

type libraryLog struct{ l *slog.Logger }

func (g libraryLog) Printf(ctx context.Context, format string, v ...any) {
	if g.l.Enabled(ctx, slog.LevelDebug) {
		g.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
	}
}
