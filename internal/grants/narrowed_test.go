package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestNarrowingEndsTokensAndFamilies: after an administrator narrows
// what a token's client or pool allows, the source checker (introspection,
// the bearer API, re-exchange) and the refresh grant agree: the access
// token is refused and its family mints nothing more. A client that no
// longer lists the token's pool or audience (docs/security.md A-60), a
// pool that no longer allows its audience, or one bound to another
// principal or unbound since. A change that leaves the token
// within the lists ends neither.
func TestNarrowingEndsTokensAndFamilies(t *testing.T) {
	const kafka, other = "https://kafka.example", "https://elsewhere.example"
	cases := []struct {
		name   string
		bound  bool // the pool acts as principal "sa"
		change func(c *storage.Client, p *storage.Pool)
		want   string // the refresh's reason; "" when both stand
	}{
		{"client's pools narrowed", false, func(c *storage.Client, _ *storage.Pool) { c.Pools = []string{"mx"} }, ReasonClientPoolNotAllowed},
		{"client's audiences narrowed", false, func(c *storage.Client, _ *storage.Pool) { c.Audiences = []string{stsIssuer} }, ReasonAudienceNotAllowed},
		{"pool's audiences narrowed", false, func(_ *storage.Client, p *storage.Pool) { p.Audiences = []string{other} }, ReasonAudienceNotAllowed},
		{"pool rebound", true, func(_ *storage.Client, p *storage.Pool) { p.PrincipalID = "ada" }, ReasonPoolPrincipal},
		{"pool unbound", true, func(_ *storage.Client, p *storage.Pool) { p.PrincipalID = "" }, ReasonPoolPrincipal},
		{"lists narrowed to what the token holds", true, func(c *storage.Client, p *storage.Pool) {
			c.Pools, c.Audiences, p.Audiences = []string{"lf"}, []string{kafka}, []string{kafka}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatrixEnv(t)
			ctx := t.Context()
			p := storage.Pool{ID: "lf", OrgID: "acme", Condition: "true", Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{kafka, other}}
			if tc.bound {
				p.PrincipalID = "sa"
			}
			if err := m.store.CreatePool(ctx, p); err != nil {
				t.Fatal(err)
			}
			if err := m.store.CreateProvider(ctx, storage.Provider{PoolID: "lf", ID: "p", Issuer: m.issuer.URL, Audiences: []string{"lf"}}); err != nil {
				t.Fatal(err)
			}
			reload(t, m)
			c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
				Pools: []string{"lf", "mx"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{kafka, stsIssuer}})
			status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "lf"), "pool", "lf", "scope", "read offline_access", "audience", kafka))
			at, _ := body["access_token"].(string)
			rt, _ := body["refresh_token"].(string)
			if status != http.StatusOK || rt == "" {
				t.Fatalf("exchange = %d %v", status, body)
			}
			src := tokens.NewStoreSources(m.store, m.grant.Trust)
			src.TTL, src.Audiences = 0, m.ref.Audiences
			check := func() error {
				t.Helper()
				claims, err := m.grant.Tokens.VerifyAccessTokenAnyAudience(ctx, at)
				if err != nil {
					t.Fatal(err)
				}
				return src.CheckSource(ctx, claims)
			}
			if err := check(); err != nil {
				t.Fatalf("fresh token's source: %v", err)
			}

			if err := m.store.UpdateClient(ctx, c.ID, func(o storage.Client) (storage.Client, error) { tc.change(&o, &storage.Pool{}); return o, nil }); err != nil {
				t.Fatal(err)
			}
			if err := m.store.UpdatePool(ctx, "lf", func(o storage.Pool) (storage.Pool, error) { tc.change(&storage.Client{}, &o); return o, nil }); err != nil {
				t.Fatal(err)
			}
			reload(t, m)

			err := check()
			status, body = m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
			if tc.want == "" {
				if err != nil || status != http.StatusOK {
					t.Errorf("the token's source: %v; refresh = %d %v; want both to stand", err, status, body)
				}
				return
			}
			if tokens.Reason(err) != "token_source_gone" {
				t.Errorf("the token's source: %v, want token_source_gone", err)
			}
			if status != http.StatusBadRequest || body["reason"] != tc.want || body["access_token"] != nil {
				t.Errorf("refresh = %d %v, want 400 %s and no token", status, body, tc.want)
			}
		})
	}
}
