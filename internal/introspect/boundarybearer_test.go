package introspect

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestBoundedBearerRefused (docs/security.md A-53, T-213): an access token
// carrying the introspect scope and narrowed with a Credential Access
// Boundary (cab, from options.accessBoundary at /v1/token) is for
// resource servers only; no boundary can name sts's introspection. Handed
// to a third party for one bucket, it read every token of the
// organization at /oauth2/introspect and /v1/introspect, as the token it
// was narrowed from does. It is refused (403 insufficient_scope, saying
// why) on both paths, and nothing is introspected; the same token without
// the boundary is still answered.
func TestBoundedBearerRefused(t *testing.T) {
	const iss = "https://sts.example"
	store := sqlitetest.NewStore(t)
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &tokens.Issuer{Signer: keys, IssuerURL: iss}
	pepper := []byte(strings.Repeat("p", 32))
	h := &Handler{Clients: &clientauth.Authenticator{Store: store, Pepper: pepper}, Tokens: &tokens.Verifier{Keys: keys, Issuer: iss}, Refresh: store, Pepper: pepper}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	now := time.Now()
	mint := func(scope string, cab map[string]any) string {
		tok, _, err := issuer.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "p", OrgID: "acme", Principal: "user",
			Audience: tokens.Audience{iss}, Scope: scope, IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour)),
			CAB: cab})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cab := map[string]any{"accessBoundaryRules": []any{map[string]any{
		"availableResource":    "//storage.example/buckets/logs",
		"availablePermissions": []any{"inRole:roles/storage.objectViewer"},
	}}}
	bounded, full, target := mint(ScopeIntrospect, cab), mint(ScopeIntrospect, nil), mint("read", nil)
	send := func(path, bearer string) (int, map[string]any, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(url.Values{"token": {target}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header.Get("WWW-Authenticate")
	}
	for _, path := range []string{Path, PathGoogle} {
		status, m, challenge := send(path, bounded)
		if status != http.StatusForbidden || m["error"] != "insufficient_scope" || m["active"] != nil {
			t.Errorf("%s with a bounded bearer: %d %v (%v), want 403 insufficient_scope and nothing introspected", path, status, m["error"], m["active"])
		}
		if d, _ := m["error_description"].(string); !strings.Contains(d, "access boundary") {
			t.Errorf("%s: error_description %q, want it to name the access boundary", path, d)
		}
		if !strings.Contains(challenge, "insufficient_scope") {
			t.Errorf("%s: WWW-Authenticate %q, want insufficient_scope", path, challenge)
		}
		if status, m, _ := send(path, full); status != http.StatusOK || m["active"] != true {
			t.Errorf("%s with the unbounded bearer: %d %v, want 200 and the token active", path, status, m["error"])
		}
	}
}
