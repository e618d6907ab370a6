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

// TestAssertionAudienceWiring: client_auth.assertion_audience issuer makes
// the client authenticator take our issuer alone as a client assertion's
// aud (docs/security.md T-125); the default takes the token endpoint too.
func TestAssertionAudienceWiring(t *testing.T) {
	t.Parallel()
	store, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, aud := range []string{config.AssertionAudienceIssuerOrTokenEndpoint, config.AssertionAudienceIssuer} {
		cfg := config.DefaultConfig()
		cfg.ClientAuth.AssertionAudience = aud
		cfg.Issuer = "http://127.0.0.1:1"
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		registry, err := newTrustRegistry(store, logger)
		if err != nil {
			t.Fatal(err)
		}
		te, err := newTokenEndpoints(cfg, store, nil, registry, logger, prometheus.NewRegistry(), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", aud, err)
		}
		ca := te.oauth.Clients
		if ca.IssuerAudienceOnly != (aud == config.AssertionAudienceIssuer) || ca.Issuer != cfg.Issuer || ca.TokenEndpoint != cfg.Issuer+"/oauth2/token" {
			t.Errorf("client_auth.assertion_audience %s: issuer only %v, issuer %q, token endpoint %q", aud, ca.IssuerAudienceOnly, ca.Issuer, ca.TokenEndpoint)
		}
	}
}
