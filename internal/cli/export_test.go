package cli

import (
	"context"
	"time"

	"github.com/opensts/sts/internal/config"
)

// CheckTrust exposes planTrust to the external tests.
func CheckTrust(cfg config.Config) error {
	_, err := planTrust(cfg)
	return err
}

// ApplyTrust plans and applies cfg's trust configuration, for the external
// tests (which may import ststest; this package's own tests may not).
func ApplyTrust(ctx context.Context, s trustStore, cfg config.Config, now time.Time) (created, updated []string, unchanged int, err error) {
	plan, err := planTrust(cfg)
	if err != nil {
		return nil, nil, 0, err
	}
	ch, err := applyTrust(ctx, s, plan, now)
	return ch.Created, ch.Updated, ch.Unchanged, err
}
