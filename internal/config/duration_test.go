package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/config"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"0": 0, "90s": 90 * time.Second, "15m": 15 * time.Minute, "12h": 12 * time.Hour,
		"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond,
	}
	for in, want := range good {
		got, err := config.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := config.ParseDuration(config.FormatDuration(want)); err != nil || back != want {
			t.Errorf("FormatDuration(%v) = %q does not read back (%v, %v)", want, config.FormatDuration(want), back, err)
		}
	}
	for _, in := range []string{"", "90", "abc", "d", "1.5d", "-1d", "1d-2h", "1w", "3 days"} {
		if _, err := config.ParseDuration(in); err == nil || !strings.Contains(err.Error(), "30d") {
			t.Errorf("ParseDuration(%q) = %v; want an error naming the accepted format", in, err)
		}
	}
	if got := config.FormatDuration(2 * time.Hour); got != "2h" {
		t.Errorf("FormatDuration(2h) = %q", got)
	}
}

// TestConfigDurations: every duration key takes d, and a bad value's
// problem names the key and the accepted format.
func TestConfigDurations(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sts.yaml")
	os.WriteFile(file, []byte("keys:\n  rotation_period: 14d\n  max_token_lifetime: 1d\ngc:\n  interval: 1d\n"), 0o600)
	cfg, err := config.Load(config.Options{File: file, Environ: func() []string { return []string{"STS_HTTP_IDLE_TIMEOUT=1d"} }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Keys.RotationPeriod != 14*24*time.Hour || cfg.GC.Interval != 24*time.Hour || cfg.HTTP.IdleTimeout != 24*time.Hour {
		t.Errorf("durations = %v %v %v", cfg.Keys.RotationPeriod, cfg.GC.Interval, cfg.HTTP.IdleTimeout)
	}
	for _, bad := range []string{"gc:\n  interval: soon\n", "gc:\n  interval: 90\n"} {
		os.WriteFile(file, []byte(bad), 0o600)
		_, err := config.Load(config.Options{File: file, Environ: func() []string { return nil }})
		if err == nil || !strings.Contains(err.Error(), "gc.interval") || !strings.Contains(err.Error(), "30d") {
			t.Errorf("Load(%q) = %v; want a gc.interval problem naming the format", bad, err)
		}
	}
}
