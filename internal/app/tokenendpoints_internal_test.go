package app

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/config"
)

// TestTokenEndpointsFailedBuildRegistersNothing (docs/security.md F-99):
// a build of the token endpoints that fails (here their rate limits) is
// retried by the start-up; it must have registered none of its metrics,
// or the retry's registration panics on the duplicates and ends the
// process instead of leaving it up, not ready.
func TestTokenEndpointsFailedBuildRegistersNothing(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.RateLimits.RedisURL = config.Secret("redis://[::1") // fails to parse
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	for attempt := 1; attempt <= 2; attempt++ {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("build %d panicked: %v", attempt, r)
				}
			}()
			if _, err := newTokenEndpoints(cfg, nil, nil, nil, logger, reg, nil, nil); err == nil {
				t.Fatalf("build %d with a bad rate_limits.redis_url succeeded", attempt)
			}
		}()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			t.Errorf("after failed build %d: %s registered", attempt, f.GetName())
		}
	}
}
