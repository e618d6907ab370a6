package introspect

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

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
	s := newTestServer(t, nil)
	mint := func(scope string, cab map[string]any) string {
		return s.mint(t, tokens.AccessClaims{Subject: "p", OrgID: "acme", Principal: "user", Scope: scope, CAB: cab})
	}
	cab := map[string]any{"accessBoundaryRules": []any{map[string]any{
		"availableResource":    "//storage.example/buckets/logs",
		"availablePermissions": []any{"inRole:roles/storage.objectViewer"},
	}}}
	bounded, full, target := mint(ScopeIntrospect, cab), mint(ScopeIntrospect, nil), mint("read", nil)
	send := func(path, bearer string) (int, map[string]any, string) {
		resp, m := s.post(t, path, formType, url.Values{"token": {target}}.Encode(), authorization("Bearer "+bearer))
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
