package app

import (
	"net/http/httptest"
	"testing"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/server"
)

// TestRouteClass: every OAuth endpoint of every dialect is admitted as the
// token class, the health, metrics and discovery endpoints as ops, and the
// rest (Connect, gRPC, web) as API (docs/security.md F-43).
func TestRouteClass(t *testing.T) {
	for path, want := range map[string]server.Class{
		"/oauth2/token": server.ClassToken, "/v1/token": server.ClassToken, "/v1/oauthtoken": server.ClassToken,
		"/sts/v1/oauth2/token": server.ClassToken, "/oauth2/introspect": server.ClassToken, "/v1/introspect": server.ClassToken,
		"/oauth2/revoke": server.ClassToken, "/credentials/revoke": server.ClassToken,
		"/livez": server.ClassOps, "/readyz": server.ClassOps, "/metrics": server.ClassOps,
		"/.well-known/jwks.json": server.ClassOps, "/.well-known/openid-configuration": server.ClassOps,
		"/sts.v1.ClientService/CreateClient": server.ClassAPI, "/gitpod.v1.IdentityService/ExchangeToken": server.ClassAPI,
		"/": server.ClassAPI, "/tokens": server.ClassAPI,
	} {
		if got := routeClass(httptest.NewRequest("GET", path, nil)); got != want {
			t.Errorf("routeClass(%s) = %s, want %s", path, got, want)
		}
	}
	var o server.Options
	cfg := config.DefaultConfig()
	boundOptions(cfg, &o)
	if o.CallTimeout != config.DefaultCallTimeout || o.MaxConnections != cfg.HTTP.MaxConnections ||
		o.MaxInFlight[server.ClassToken] != cfg.HTTP.MaxInFlight.Token || o.MaxInFlight[server.ClassOps] != cfg.HTTP.MaxInFlight.Ops ||
		o.MaxInFlight[server.ClassAPI] != cfg.HTTP.MaxInFlight.API || o.Classify == nil ||
		!o.Gated[server.ClassToken] || o.Gated[server.ClassAPI] || o.Gated[server.ClassOps] {
		t.Errorf("boundOptions(defaults) = %+v", o)
	}
}
