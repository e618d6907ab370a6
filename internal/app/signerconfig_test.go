package app_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
)

// TestSignerConfigStorageTimeout (docs/security.md F-94): each storage
// step of the key poll, a rotation and a revocation is bounded by
// storage.call_timeout, the bound of every other storage call, in serve
// and in the CLI's direct mode alike (both build the signer from
// SignerConfig), not by a fixed 5 s.
func TestSignerConfigStorageTimeout(t *testing.T) {
	t.Parallel()
	cfg := config.DefaultConfig()
	if got := app.SignerConfig(cfg).StorageTimeout; got != config.DefaultCallTimeout {
		t.Errorf("storage.call_timeout unset: signer StorageTimeout = %s, want the default %s", got, config.DefaultCallTimeout)
	}
	cfg.Storage.CallTimeout = 2 * time.Second
	if got := app.SignerConfig(cfg).StorageTimeout; got != 2*time.Second {
		t.Errorf("storage.call_timeout 2s: signer StorageTimeout = %s, want 2s", got)
	}
}
