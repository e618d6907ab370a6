package app

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestAuditModeWiring: audit.mode required gives the token endpoint the
// writer's group commit (docs/security.md D-11); best_effort does not.
func TestAuditModeWiring(t *testing.T) {
	t.Parallel()
	store, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, mode := range []string{config.AuditModeBestEffort, config.AuditModeRequired} {
		cfg := config.DefaultConfig()
		cfg.Audit.Mode = mode
		cfg.Issuer = "http://127.0.0.1:1"
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		registry, err := newTrustRegistry(store, logger)
		if err != nil {
			t.Fatal(err)
		}
		te, err := newTokenEndpoints(cfg, store, nil, registry, logger, prometheus.NewRegistry(), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if got := te.handler.Durable != nil; got != (mode == config.AuditModeRequired) {
			t.Errorf("audit.mode %s: durable audit wired = %v", mode, got)
		}
		if te.audit.DrainTimeout != cfg.HTTP.ShutdownTimeout {
			t.Errorf("audit drain timeout = %v, want http.shutdown_timeout %v", te.audit.DrainTimeout, cfg.HTTP.ShutdownTimeout)
		}
	}
}
