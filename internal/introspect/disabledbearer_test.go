package introspect

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestDisabledPrincipalBearerRefused: the bearer of introspection is
// judged by the verifier as production wires it, with the source check
// (docs/security.md ): once its principal is disabled, a token
// with the introspect scope no longer introspects, on either path.
func TestDisabledPrincipalBearerRefused(t *testing.T) {
	const iss = "https://sts.example"
	store := sqlitetest.NewStore(t)
	ctx := t.Context()
	if err := store.CreatePrincipal(ctx, storage.Principal{ID: "p", OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "rs"}); err != nil {
		t.Fatal(err)
	}
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	sources := tokens.NewStoreSources(store, nil)
	sources.TTL = 0 // judge the principal on every request, not a cached answer
	issuer := &tokens.Issuer{Signer: keys, IssuerURL: iss}
	pepper := []byte(strings.Repeat("p", 32))
	h := &Handler{Clients: &clientauth.Authenticator{Store: store, Pepper: pepper},
		Tokens: &tokens.Verifier{Keys: keys, Issuer: iss, Sources: sources}, Refresh: store, Pepper: pepper}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	now := time.Now()
	mint := func(scope string) string {
		tok, _, err := issuer.MintAccessToken(ctx, tokens.AccessClaims{Subject: "p", OrgID: "acme", Principal: string(storage.PrincipalServiceAccount),
			Audience: tokens.Audience{iss}, Scope: scope, IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bearer, target := mint(ScopeIntrospect), mint("read")
	send := func(path string) int {
		body, ct := url.Values{"token": {target}}.Encode(), "application/x-www-form-urlencoded"
		if path == PathGoogle {
			body, ct = `{"token":"`+target+`"}`, "application/json"
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{Path, PathGoogle} {
		if st := send(path); st != http.StatusOK {
			t.Fatalf("%s before the disable: %d, want 200", path, st)
		}
	}
	if err := store.UpdatePrincipal(ctx, "p", func(p storage.Principal) (storage.Principal, error) {
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
