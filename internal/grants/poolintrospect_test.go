package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestStoredPoolGrantsNoIntrospect: a pool stored with "introspect" among
// its scopes (before the pool service refused it, or written around it)
// grants it to no one: an anonymous exchange asking for it is
// invalid_scope, one asking for nothing gets the rest of the ceiling, and
// a token exchanged with it before is refused by the source checker
// (introspection's bearer check, the bearer API, re-exchange), so it no
// longer introspects the organization's tokens (docs/security.md A-68).
func TestStoredPoolGrantsNoIntrospect(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	if err := m.store.CreatePool(ctx, storage.Pool{ID: "ix", OrgID: "acme", Condition: "true", AllowUnauthenticated: true,
		Scopes: []string{"read", "introspect"}, GoogleDefaultScopes: []string{"introspect"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.store.CreateProvider(ctx, storage.Provider{PoolID: "ix", ID: "p", Issuer: m.issuer.URL, Audiences: []string{"ix"}}); err != nil {
		t.Fatal(err)
	}
	reload(t, m)

	status, body := m.postAs(t, "", "", exchangeForm(m.subjectToken(t, "ix"), "pool", "ix", "scope", "introspect"))
	if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidScope || body["access_token"] != nil {
		t.Errorf("exchange asking for introspect = %d %v, want 400 invalid_scope", status, body)
	}
	status, body = m.postAs(t, "", "", exchangeForm(m.subjectToken(t, "ix"), "pool", "ix"))
	if status != http.StatusOK || body["scope"] != "read" {
		t.Errorf("exchange asking for no scope = %d %v, want 200 with scope read", status, body)
	}

	if p, err := m.grant.Trust.Check(ctx, "ix", "p"); err != nil || p.GoogleDefaultScopes == nil || len(p.GoogleDefaultScopes) != 0 {
		t.Errorf("the registry's pool: %v, %v; want google_default_scopes empty, not nil (which would be the whole ceiling)", p, err)
	}

	now := time.Now()
	tok, _, err := m.grant.Issuer.MintAccessToken(ctx, tokens.AccessClaims{
		Subject: "u-earlier", Audience: tokens.Audience{stsIssuer}, IssuedAt: tokens.NewNumericDate(now),
		Expiry: tokens.NewNumericDate(now.Add(time.Hour)), Scope: "read introspect", OrgID: "acme",
		Pool: "ix", Provider: "p", ClientID: "pools/ix/providers/p",
	})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := m.grant.Tokens.VerifyAccessTokenAnyAudience(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	src := tokens.NewStoreSources(m.store, m.grant.Trust)
	src.TTL, src.Audiences = 0, m.ref.Audiences
	if err := src.CheckSource(ctx, claims); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("source of a token holding the pool's introspect: %v, want token_source_gone", err)
	}
	claims.Scope = "read"
	if err := src.CheckSource(ctx, claims); err != nil {
		t.Errorf("source of a token holding only read: %v, want it to stand", err)
	}
}
