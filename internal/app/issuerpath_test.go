package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/opensts/sts/internal/config"
)

// TestIssuerWithPath: an issuer with a path (`https://example.com/sts`,
// the public URL of a server reached under a path) is what discovery
// advertises every endpoint under, so each must answer there: go-oidc
// discovers the provider at <issuer>/.well-known/openid-configuration,
// x/oauth2 gets a token at the advertised token endpoint, go-oidc checks
// it with the advertised JWKS, introspection answers at its advertised
// address, and RFC 8414 §3.1's location with the path after the
// well-known name serves the same document. The root keeps answering
// (the pages link there), even for an issuer path that is also the
// first segment of one of our own routes (docs/configuration.md, issuer).
func TestIssuerWithPath(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/sts", "/oauth2"} {
		t.Run(path, func(t *testing.T) {
			var issuer string
			e := newCodeEnv(t, func(c *config.Config) {
				c.Issuer, c.IssuerDerived = "http://"+c.Listen+path, false
				issuer = c.Issuer
			})
			ctx := t.Context()
			provider, err := oidc.NewProvider(ctx, issuer)
			if err != nil {
				t.Fatalf("go-oidc discovery at the issuer: %v", err)
			}
			var meta map[string]any
			if err := provider.Claims(&meta); err != nil {
				t.Fatal(err)
			}
			id, sec := e.serviceClient(t)
			cc := clientcredentials.Config{ClientID: id, ClientSecret: sec, TokenURL: provider.Endpoint().TokenURL}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("x/oauth2 at the advertised token endpoint %s: %v", cc.TokenURL, err)
			}
			if _, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, tok.AccessToken); err != nil {
				t.Errorf("go-oidc with the advertised JWKS: %v", err)
			}
			for _, endpoint := range []string{meta["introspection_endpoint"].(string), e.base + "/oauth2/introspect"} {
				req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, sec)
				if st, m := do(t, req); st != http.StatusOK || m["active"] != true {
					t.Errorf("introspection at %s = %d %v, want the token active", endpoint, st, m)
				}
			}
			for _, doc := range []string{e.base + "/.well-known/oauth-authorization-server" + path, e.base + "/.well-known/openid-configuration"} {
				resp, body := mustGet(t, http.DefaultClient, doc)
				var m map[string]any
				if err := json.Unmarshal([]byte(body), &m); resp.StatusCode != http.StatusOK || err != nil || m["issuer"] != issuer {
					t.Errorf("GET %s = %d %.80q, want the metadata of %s", doc, resp.StatusCode, body, issuer)
				}
			}
		})
	}
}
