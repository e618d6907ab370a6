package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRedisURLLayers: rate_limits.redis_url and redis_timeout come from the
// file (with ${VAR} expansion) and from STS_RATE_LIMITS_REDIS_URL /
// STS_RATE_LIMITS_REDIS_TIMEOUT, the environment winning, like every key.
func TestRedisURLLayers(t *testing.T) {
	if got := DefaultConfig().RateLimits; got.RedisURL != "" || got.RedisTimeout != 100*time.Millisecond {
		t.Errorf("defaults: redis_url %q, redis_timeout %s; want empty (in memory) and 100ms", got.RedisURL.Reveal(), got.RedisTimeout)
	}
	m := envKeys()
	if m["STS_RATE_LIMITS_REDIS_URL"] != "rate_limits.redis_url" || m["STS_RATE_LIMITS_REDIS_TIMEOUT"] != "rate_limits.redis_timeout" {
		t.Errorf("environment names: %q %q", m["STS_RATE_LIMITS_REDIS_URL"], m["STS_RATE_LIMITS_REDIS_TIMEOUT"])
	}
	path := writeFile(t, "rate_limits:\n  redis_url: redis://:${STS_TEST_REDIS_PW}@10.0.0.5:6380/2\n  redis_timeout: 50ms\n")
	tests := []struct {
		name    string
		env     []string
		wantURL string
		wantTO  time.Duration
	}{
		{"file", []string{"STS_TEST_REDIS_PW=pw"}, "redis://:pw@10.0.0.5:6380/2", 50 * time.Millisecond},
		{"environment wins", []string{"STS_TEST_REDIS_PW=pw", "STS_RATE_LIMITS_REDIS_URL=rediss://u:p@redis.internal/0", "STS_RATE_LIMITS_REDIS_TIMEOUT=250ms"},
			"rediss://u:p@redis.internal/0", 250 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(Options{File: path, Environ: func() []string { return tc.env }})
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			if got.RateLimits.RedisURL.Reveal() != tc.wantURL || got.RateLimits.RedisTimeout != tc.wantTO {
				t.Errorf("redis_url %q, redis_timeout %s; want %q, %s", got.RateLimits.RedisURL.Reveal(), got.RateLimits.RedisTimeout, tc.wantURL, tc.wantTO)
			}
		})
	}
}

// TestRedisURLProblems: a bad URL or timeout is a problem naming its key,
// and the message never repeats the URL (it may hold a password).
func TestRedisURLProblems(t *testing.T) {
	const shape = "must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0 (the value is not shown: it may hold a password)"
	tests := []struct {
		name string
		env  []string
		want []Problem
	}{
		{"not a URL", []string{"STS_RATE_LIMITS_REDIS_URL=redis://:s3cr3t@[::1"}, []Problem{{"rate_limits.redis_url", shape}}},
		{"bad port", []string{"STS_RATE_LIMITS_REDIS_URL=redis://:s3cr3t@127.0.0.1:port/0"}, []Problem{{"rate_limits.redis_url", shape}}},
		{"port out of range", []string{"STS_RATE_LIMITS_REDIS_URL=redis://:s3cr3t@127.0.0.1:70000/0"}, []Problem{{"rate_limits.redis_url", shape}}},
		{"wrong scheme", []string{"STS_RATE_LIMITS_REDIS_URL=http://:s3cr3t@127.0.0.1:6379"}, []Problem{{"rate_limits.redis_url", shape}}},
		{"no host", []string{"STS_RATE_LIMITS_REDIS_URL=redis:///0"}, []Problem{{"rate_limits.redis_url", shape}}},
		{"host:port only", []string{"STS_RATE_LIMITS_REDIS_URL=127.0.0.1:6379"}, []Problem{{"rate_limits.redis_url", shape}}},
		{"bad database", []string{"STS_RATE_LIMITS_REDIS_URL=redis://:s3cr3t@127.0.0.1:6379/zero"}, []Problem{{"rate_limits.redis_url", "the path must be a database number such as /0"}}},
		{"query options", []string{"STS_RATE_LIMITS_REDIS_URL=redis://127.0.0.1:6379/0?dial_timeout=30s"},
			[]Problem{{"rate_limits.redis_url", "must not carry query options or a fragment; set rate_limits.redis_timeout instead"}}},
		{"timeout", []string{"STS_RATE_LIMITS_REDIS_TIMEOUT=0s"}, []Problem{{"rate_limits.redis_timeout", "must be between 1ms and 5s, got 0s"}}},
		{"timeout too long", []string{"STS_RATE_LIMITS_REDIS_TIMEOUT=1m"}, []Problem{{"rate_limits.redis_timeout", "must be between 1ms and 5s, got 1m0s"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(Options{Environ: func() []string { return tc.env }})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load() error = %v, want *Error", err)
			}
			if diff := cmp.Diff(tc.want, cerr.Problems); diff != "" {
				t.Errorf("Load() problems (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}

	// Unknown keys next to it are reported as everywhere else.
	path := writeFile(t, "rate_limits:\n  redis_uri: redis://127.0.0.1:6379/0\n")
	_, err := Load(Options{File: path, Environ: noEnv})
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Field != "rate_limits.redis_uri" {
		t.Errorf("Load(redis_uri) = %v, want the unknown key named", err)
	}

	for _, ok := range []string{"", "redis://127.0.0.1", "redis://127.0.0.1:6379", "redis://127.0.0.1:6379/", "redis://u:p@[::1]:6379/15", "rediss://cache.internal:6380/1"} {
		if err := checkRedisURL(ok); err != nil {
			t.Errorf("checkRedisURL(%q) = %v, want nil", ok, err)
		}
	}
}

// TestRedisURLNeverPrinted: the URL is a Secret, so printing the
// configuration (%v, %+v, slog) never shows its password.
func TestRedisURLNeverPrinted(t *testing.T) {
	got, err := Load(Options{Environ: func() []string { return []string{"STS_RATE_LIMITS_REDIS_URL=redis://:s3cr3t@127.0.0.1:6379/0"} }})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", got), fmt.Sprintf("%+v", got.RateLimits), fmt.Sprint(got.RateLimits.RedisURL)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("printed configuration shows the password: %s", s)
		}
	}
}
