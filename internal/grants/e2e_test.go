package grants_test

import (
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/pkg/rs"
)

// TestServeSQLite and TestServePostgres run the real sts serve (app.Run:
// config → trust applied to storage → registry → handler) with the example
// pool of the README pointed at a local test issuer, and exchange in all
// three dialects.
func TestServeSQLite(t *testing.T) {
	t.Parallel()
	testServe(t, nil)
}

// TestServeSQLiteWithoutVerifiedCache: with federation.verified_token_cache
// 0 every exchange verifies its token's signature, as before the cache,
// and no cache metric is exported.
func TestServeSQLiteWithoutVerifiedCache(t *testing.T) {
	t.Parallel()
	testServe(t, func(c *config.Config) { c.Federation.VerifiedTokenCache = 0 })
}

func TestServePostgres(t *testing.T) {
	t.Parallel()
	dsn := ststest.PostgresDSN(t)
	testServe(t, func(c *config.Config) {
		c.Storage = config.StorageConfig{Type: "postgres", DSN: dsn, AutoMigrate: true}
	})
}

func testServe(t *testing.T, mutate func(*config.Config)) {
	issURL, mint := grants.NewIssuerForTest(t)
	srv := ststest.NewTestServer(t, func(c *config.Config) {
		if mutate != nil {
			mutate(c)
		}
		c.Federation.AllowLoopback = true
		c.Errors.Detail = config.ErrorDetailReason // the refusal below is judged by its reason
		c.Organizations = []config.OrganizationConfig{{ID: "acme", Name: "Acme", Tier: "enterprise"}}
		c.Pools = []config.PoolConfig{{
			ID: "ci", Organization: "acme", Condition: `assertion.repository_owner == "acme"`,
			Mapping: config.MappingConfig{Subject: "assertion.sub", Attributes: map[string]string{"repo": "assertion.repository"}},
			Scopes:  []string{"read", "write"}, MaxTokenLifetime: time.Hour, AllowUnauthenticated: true,
			Providers: []config.ProviderConfig{{ID: "github", Issuer: issURL, Audiences: []string{"sts"}}},
		}}
	})
	tok := mint("RS256", "alice", nil)
	exchange := map[string]url.Values{
		grants.PathToken: {"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
			"subject_token_type": {oauth2.TokenTypeJWT}, "scope": {"read"}},
		grants.PathGoogleToken: {"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
			"subject_token_type": {oauth2.TokenTypeJWT}, "audience": {"//sts.example/pools/ci/providers/github"}},
		grants.PathConfluentToken: {"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
			"subject_token_type": {oauth2.TokenTypeJWT}, "identity_pool_id": {"ci"}},
	}
	v := &rs.Verifier{Issuer: srv.Config.Issuer, Audience: srv.Config.Issuer}
	for path, form := range exchange {
		resp, err := srv.Client.Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %v %v", path, resp.StatusCode, resp.Header, body)
		}
		c, err := v.Verify(t.Context(), body["access_token"].(string))
		if err != nil {
			t.Fatalf("%s: pkg/rs rejects the token: %v", path, err)
		}
		if c.Subject != "alice" || c.Pool != "ci" || c.Provider != "github" {
			t.Errorf("%s: claims %+v", path, c)
		}
	}
	// The same token three times, one pool and provider: verified once,
	// then answered by the cache (on by default).
	metrics := func() string {
		resp := srv.Get(t, "/metrics")
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := metrics()
	if srv.Config.Federation.VerifiedTokenCache > 0 {
		for _, want := range []string{"sts_verified_token_cache_hits_total 2\n", "sts_verified_token_cache_misses_total 1\n", "sts_verified_token_cache_entries 1\n"} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	} else if strings.Contains(m, "sts_verified_token_cache") {
		t.Errorf("the cache is off, yet its metrics are exported")
	}
	// A refusal: another tenant's token (docs/security.md T-46).
	bad := url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {mint("RS256", "eve", map[string]any{"repository_owner": "evil"})},
		"subject_token_type": {oauth2.TokenTypeJWT}}
	resp, err := srv.Client.Post(srv.URL+grants.PathToken, "application/x-www-form-urlencoded", strings.NewReader(bad.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 400 || body["reason"] != "condition_false" || body["error_description"] != "subject_token rejected" {
		t.Errorf("refusal: %d %v", resp.StatusCode, body)
	}
	// Discovery advertises the grant.
	resp = srv.Get(t, "/.well-known/openid-configuration")
	var md struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	json.NewDecoder(resp.Body).Decode(&md)
	if len(md.GrantTypes) == 0 || md.GrantTypes[0] != oauth2.GrantTypeTokenExchange {
		t.Errorf("grant_types_supported = %v", md.GrantTypes)
	}
}
