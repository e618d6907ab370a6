package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestOtherOrganizationsPoolCannotCaptureSelection (docs/security.md
// a pool is chosen by the token's issuer and audience when the
// request names none. An administrator of another organization could
// create a pool trusting the same issuer and audience (its condition
// "false") and so make every such exchange of a client of acme ambiguous,
// and refused. A client acts within its own organization only, so only
// its organization's pools are candidates for it; a request without a
// client still chooses among every organization's pools and is told to
// name the pool when two match.
func TestOtherOrganizationsPoolCannotCaptureSelection(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	pepper := []byte(strings.Repeat("p", 32))
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	sec := secret.PrefixClientSecret.Generate()
	c := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: []string{"ci"},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}}
	if err := e.store.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	exchange := func(withClient bool) (int, map[string]any) {
		t.Helper()
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(exchangeForm(tok, "scope", "read").Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withClient {
			r.SetBasicAuth(c.ID, sec)
		}
		resp, body := do(t, r)
		return resp.StatusCode, body
	}
	if status, body := exchange(true); status != 200 {
		t.Fatalf("before: %d %v, want 200", status, body)
	}
	if err := e.store.CreateOrganization(ctx, storage.Organization{ID: "evil", Name: "Evil"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "squat", OrgID: "evil", Condition: "false", AllowUnauthenticated: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "squat", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"sts"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.grant.Trust.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if status, body := exchange(true); status != 200 {
		t.Errorf("acme's client after evil's pool trusts the same issuer and audience: %d %v, want 200 from ci", status, body)
	}
	// Without a client the request is for any organization's pool: two
	// match, and it must name one.
	if status, body := exchange(false); status != 400 || body["reason"] != "ambiguous_pool" {
		t.Errorf("no client, two organizations' pools match: %d %v, want 400 ambiguous_pool", status, body)
	}
}
