package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
)

// TestPoolPrincipalBinding: a pool bound to a principal issues tokens that
// act as it: sub is the principal's ID and principal its kind (what our
// APIs authorize by), the source identity stays in src. A disabled
// principal, one of another organization or a missing one refuses the
// exchange, checked on every exchange (docs/security.md T-57).
func TestPoolPrincipalBinding(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if err := e.store.CreateOrganization(ctx, storage.Organization{ID: "globex", Name: "Globex", Tier: "free"}); err != nil {
		t.Fatal(err)
	}
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "deployer"}
	foreign := storage.Principal{ID: storage.NewID(), OrgID: "globex", Kind: storage.PrincipalServiceAccount, Name: "other"}
	for _, p := range []storage.Principal{sa, foreign} {
		if err := e.store.CreatePrincipal(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	e.grant.Principals = e.store
	for _, id := range []string{"bound", "foreign", "missing"} {
		principal := map[string]string{"bound": sa.ID, "foreign": foreign.ID, "missing": storage.NewID()}[id]
		if err := e.store.CreatePool(ctx, storage.Pool{ID: id, OrgID: "acme", Condition: "true", Scopes: []string{"read"},
			AllowUnauthenticated: true, PrincipalID: principal}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: id, ID: "p", Issuer: e.issuer.URL, Audiences: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	exchange := func(pool string) (*http.Response, map[string]any) {
		c := e.issuer.claims(time.Now(), "job-7")
		c["aud"] = pool
		return e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", c), "pool", pool))
	}

	resp, body := exchange("bound")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bound pool = %d %v, want 200", resp.StatusCode, body)
	}
	claims := payload(t, body["access_token"].(string))
	src, _ := claims["src"].(map[string]any)
	if claims["sub"] != sa.ID || claims["principal"] != string(storage.PrincipalServiceAccount) || claims["org_id"] != "acme" ||
		src["sub"] != "job-7" {
		t.Errorf("claims = %v, want sub %s, principal SERVICE_ACCOUNT, org acme, src.sub job-7", claims, sa.ID)
	}

	for _, pool := range []string{"foreign", "missing"} {
		if resp, body := exchange(pool); resp.StatusCode != http.StatusBadRequest || body["reason"] != ReasonPoolPrincipal {
			t.Errorf("pool %s = %d %v, want 400 %s", pool, resp.StatusCode, body, ReasonPoolPrincipal)
		}
	}
	err := e.store.UpdatePrincipal(ctx, sa.ID, func(p storage.Principal) (storage.Principal, error) { p.Disabled = true; return p, nil })
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := exchange("bound"); resp.StatusCode != http.StatusBadRequest || body["reason"] != ReasonPoolPrincipal {
		t.Errorf("disabled principal = %d %v, want 400 %s", resp.StatusCode, body, ReasonPoolPrincipal)
	}
}

// TestPoolPrincipalBindingCached: with the per-node record cache (as serve
// wires it) a bound principal is read once; disabling it through this
// node refuses the next exchange at once, and a principal re-enabled
// elsewhere is admitted at once (a refusal re-reads storage).
func TestPoolPrincipalBindingCached(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "deployer"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "bound", OrgID: "acme", Condition: "true", Scopes: []string{"read"},
		AllowUnauthenticated: true, PrincipalID: sa.ID}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "bound", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"bound"}}); err != nil {
		t.Fatal(err)
	}
	here := cache.New(e.store)
	e.grant.Principals, e.grant.PrincipalCache = here, here
	exchange := func() int {
		c := e.issuer.claims(time.Now(), "job-7")
		c["aud"] = "bound"
		resp, _ := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", c), "pool", "bound"))
		return resp.StatusCode
	}
	setDisabled := func(st storage.PrincipalStore, d bool) {
		t.Helper()
		if err := st.UpdatePrincipal(ctx, sa.ID, func(p storage.Principal) (storage.Principal, error) { p.Disabled = d; return p, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got := exchange(); got != http.StatusOK {
		t.Fatalf("first exchange = %d", got)
	}
	setDisabled(here, true)
	if got := exchange(); got != http.StatusBadRequest {
		t.Errorf("principal disabled through this node = %d, want 400 at once", got)
	}
	setDisabled(e.store, false)
	if got := exchange(); got != http.StatusOK {
		t.Errorf("principal re-enabled elsewhere = %d, want 200 at once", got)
	}
}
