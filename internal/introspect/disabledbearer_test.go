package introspect

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestDisabledPrincipalBearerRefused: the bearer of introspection is
// judged by the verifier as production wires it, with the source check
// (docs/security.md ): once its principal is disabled, a token
// with the introspect scope no longer introspects, on either path.
func TestDisabledPrincipalBearerRefused(t *testing.T) {
	s := newTestServer(t, func(s *testServer, h *Handler) {
		sources := tokens.NewStoreSources(s.store, nil)
		sources.TTL = 0 // judge the principal on every request, not a cached answer
		h.Tokens.Sources = sources
	})
	ctx := t.Context()
	if err := s.store.CreatePrincipal(ctx, storage.Principal{ID: "p", OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "rs"}); err != nil {
		t.Fatal(err)
	}
	mint := func(scope string) string {
		return s.mint(t, tokens.AccessClaims{Subject: "p", OrgID: "acme", Principal: string(storage.PrincipalServiceAccount), Scope: scope})
	}
	bearer, target := mint(ScopeIntrospect), mint("read")
	send := func(path string) int {
		body, ct := url.Values{"token": {target}}.Encode(), formType
		if path == PathGoogle {
			body, ct = `{"token":"`+target+`"}`, "application/json"
		}
		resp, _ := s.post(t, path, ct, body, authorization("Bearer "+bearer))
		return resp.StatusCode
	}
	for _, path := range []string{Path, PathGoogle} {
		if st := send(path); st != http.StatusOK {
			t.Fatalf("%s before the disable: %d, want 200", path, st)
		}
	}
	if err := s.store.UpdatePrincipal(ctx, "p", func(p storage.Principal) (storage.Principal, error) {
		p.Disabled = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{Path, PathGoogle} {
		if st := send(path); st != http.StatusUnauthorized {
			t.Errorf("%s with the bearer of a disabled principal: %d, want 401", path, st)
		}
	}
}
