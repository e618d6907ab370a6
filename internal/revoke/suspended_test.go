package revoke_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/revoke"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// TestRevokeWhileSuspended: a token whose source (principal, pool,
// provider) is disabled is suspended, not ended: re-enabling the source
// lets it work again (docs/design.md#lifetimes). So a revocation answered
// 200 while it is suspended must be stored (RFC 7009 §2.2: 200 means
// revoked), or the token the client revoked comes back with its source
// (docs/security.md A-41). The revocation path checks the signature, the
// claims and who may revoke, never the source; both the client path and
// the holder path.
func TestRevokeWhileSuspended(t *testing.T) {
	const iss = "https://sts.example"
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pepper := []byte(strings.Repeat("p", 32))
	if err := st.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "ci"}
	if err := st.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: []string{"ci"},
		Audiences: []string{iss}}
	if err := st.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePool(ctx, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProvider(ctx, storage.Provider{PoolID: "ci", ID: "gh", Issuer: "https://issuer.example", Audiences: []string{"sts"}}); err != nil {
		t.Fatal(err)
	}
	compiler, err := pools.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	reg := &trust.Registry{Store: st, Compiler: compiler}
	if err := reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	sources := tokens.NewStoreSources(st, reg)
	sources.TTL = 0                   // every check reads the source's current state
	sources.Audiences = []string{iss} // the exchange's default audience, allowed through every pool
	// full is how every consumer judges a token: revocations and sources.
	full := &tokens.Verifier{Keys: keys, Issuer: iss, Revocations: tokens.StoreRevocations{Store: st}, Sources: sources}
	h := &revoke.Handler{Clients: &clientauth.Authenticator{Store: st, Pepper: pepper}, Tokens: full, Store: st, Pepper: pepper}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	setPrincipal := func(disabled bool) {
		t.Helper()
		if err := st.UpdatePrincipal(ctx, sa.ID, func(p storage.Principal) (storage.Principal, error) { p.Disabled = disabled; return p, nil }); err != nil {
			t.Fatal(err)
		}
	}
	setPool := func(disabled bool) {
		t.Helper()
		if err := st.UpdatePool(ctx, "ci", func(p storage.Pool) (storage.Pool, error) { p.Disabled = disabled; return p, nil }); err != nil {
			t.Fatal(err)
		}
		if err := reg.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	setProvider := func(disabled bool) {
		t.Helper()
		if err := st.UpdateProvider(ctx, "ci", "gh", func(p storage.Provider) (storage.Provider, error) { p.Disabled = disabled; return p, nil }); err != nil {
			t.Fatal(err)
		}
		if err := reg.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A pool's token names an external subject; one acting as our
	// principal names it (a bound pool, client_credentials).
	poolToken := tokens.AccessClaims{Subject: "repo:acme/app", OrgID: "acme", Pool: "ci", Provider: "gh"}
	principalToken := tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", Principal: string(sa.Kind)}

	for _, tc := range []struct {
		name    string
		claims  tokens.AccessClaims
		client  string // the token's client_id
		byID    string // who revokes: client.ID, or "" for the holder without credentials
		suspend func(disabled bool)
	}{
		{"pool disabled, its client revokes", poolToken, client.ID, client.ID, setPool},
		{"provider disabled, its client revokes", poolToken, client.ID, client.ID, setProvider},
		{"principal disabled, its client revokes", principalToken, client.ID, client.ID, setPrincipal},
		{"pool disabled, the holder revokes", poolToken, "gh", "", setPool},
		{"principal disabled, the holder revokes", principalToken, "sts-api", "", setPrincipal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.claims
			now := time.Now()
			c.ClientID, c.Audience = tc.client, tokens.Audience{iss}
			c.IssuedAt, c.Expiry = tokens.NewNumericDate(now), tokens.NewNumericDate(now.Add(time.Hour))
			tok, c, err := (&tokens.Issuer{Signer: keys, IssuerURL: iss}).MintAccessToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := full.VerifyAccessTokenAnyAudience(ctx, tok); err != nil {
				t.Fatalf("before: %v", err)
			}
			tc.suspend(true)
			if _, err := full.VerifyAccessTokenAnyAudience(ctx, tok); !errors.Is(err, tokens.ErrSourceGone) {
				t.Fatalf("source disabled: %v, want ErrSourceGone", err)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+revoke.Path, strings.NewReader(url.Values{"token": {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.byID != "" {
				req.SetBasicAuth(tc.byID, sec)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("revoke while suspended = %d, want 200", resp.StatusCode)
			}
			tc.suspend(false)
			if _, err := full.VerifyAccessTokenAnyAudience(ctx, tok); !errors.Is(err, tokens.ErrRevoked) {
				t.Errorf("source re-enabled after the revocation: %v, want ErrRevoked", err)
			}
			if _, err := st.GetRevocation(ctx, tokens.RevocationIDJTI(c.ID)); err != nil {
				t.Errorf("revocation row of jti %s: %v", c.ID, err)
			}
		})
	}
}
