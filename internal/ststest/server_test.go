package ststest_test

import (
	"net/http"
	"testing"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ststest"
)

func TestNewTestServer(t *testing.T) {
	srv := ststest.NewTestServer(t, nil)
	resp := srv.Get(t, "/livez")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("GET /livez = %s, request id %q", resp.Status, resp.Header.Get("X-Request-Id"))
	}
	if srv.Config.Issuer != srv.URL {
		t.Errorf("issuer = %q, want the server URL %q", srv.Config.Issuer, srv.URL)
	}
}

func TestNewTestServerPostgres(t *testing.T) {
	dsn := ststest.PostgresDSN(t)
	srv := ststest.NewTestServer(t, func(c *config.Config) {
		c.Storage = config.StorageConfig{Type: "postgres", DSN: dsn, AutoMigrate: true}
	})
	if resp := srv.Get(t, "/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz = %s", resp.Status)
	}
}
