package api

import (
	"context"
	"strings"
	"testing"
	"time"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// newDryRunClient stores a token-exchange client of e's organization listing
// pools, scope read and the default audience, with its own service
// account; method is its auth method, and each of mut changes it before
// it is stored.
func newDryRunClient(t *testing.T, e *poolEnv, method string, pools []string, mut ...func(*storage.Client)) storage.Client {
	t.Helper()
	sa, err := CreatePrincipal(context.Background(), e.store, testCaller, e.org.ID, storage.PrincipalServiceAccount, "dr-"+storage.NewID()[:8], "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cl := storage.Client{ID: storage.NewID(), OrgID: e.org.ID, PrincipalID: sa.ID, AuthMethod: method,
		GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: pools, Scopes: []string{"read"}, Audiences: []string{testIssuer}}
	for _, m := range mut {
		m(&cl)
	}
	if err := e.store.CreateClient(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// dryRunPool creates pool id with scopes, trusting the env's issuer.
func dryRunPool(t *testing.T, e *poolEnv, id string, open bool, scopes ...string) {
	t.Helper()
	c := e.poolClient(e.srv.URL)
	p := e.validPool(id)
	p.Scopes, p.AllowUnauthenticated = scopes, open
	if _, err := c.CreatePool(as(e.admin), p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProvider(as(e.admin), e.validProvider(id, "gh")); err != nil {
		t.Fatal(err)
	}
}

// TestDryRunPublicClientIsAnonymous (docs/security.md T-214): at the token
// endpoint a public client (auth method none) is identified, not
// authenticated, and the exchange runs as an anonymous caller
// (clientauth.Optional; grants TestPublicClientTokenExchange): an open pool
// admits it whatever its lists say, a pool requiring a client refuses it
// client_auth_required, and the policy sees no client_id. The dry run said
// the opposite of both.
func TestDryRunPublicClientIsAnonymous(t *testing.T) {
	onPoolBackends(t, func(t *testing.T, e *poolEnv) {
		c := e.poolClient(e.srv.URL)
		ctx := as(e.admin)
		dryRunPool(t, e, "open", true, "read")
		dryRunPool(t, e, "locked", false, "read")
		tok := e.sign(t, nil, "repo:acme/app", "acme")

		res, err := c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: "open", SubjectToken: tok,
			ClientId: newDryRunClient(t, e, oauth2.AuthMethodNone, nil).ID, Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.GetAllowed() {
			t.Errorf("open pool, public client listing no pool: allowed = false, reason %q; the exchange admits it as an anonymous caller", res.GetReason())
		}
		if d := stepDetail(res, "request"); !strings.Contains(d, `client_id ""`) {
			t.Errorf("request step %q, want the policy to see no client_id, as the exchange's does", d)
		}

		res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: "locked", SubjectToken: tok,
			ClientId: newDryRunClient(t, e, oauth2.AuthMethodNone, []string{"locked"}).ID, Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetAllowed() || res.GetReason() != "client_auth_required" {
			t.Errorf("pool requiring a client, public client: allowed = %v, reason %q; the exchange refuses it client_auth_required", res.GetAllowed(), res.GetReason())
		}
	})
}

// TestDryRunClientServiceAccount (docs/security.md T-214, A-94): the
// exchange refuses a confidential client whose service account is
// disabled, deleted or of another organization (clientauth.ServiceAccount,
// invalid_client principal_disabled); the dry run said ALLOWED.
func TestDryRunClientServiceAccount(t *testing.T) {
	onPoolBackends(t, func(t *testing.T, e *poolEnv) {
		c := e.poolClient(e.srv.URL)
		dryRunPool(t, e, "judge", false, "read")
		tok := e.sign(t, nil, "repo:acme/app", "acme")
		other := storage.Organization{ID: storage.NewID(), Name: "other-" + storage.NewID()[:8]}
		if err := e.store.CreateOrganization(context.Background(), other); err != nil {
			t.Fatal(err)
		}
		for name, mut := range map[string]func(storage.Principal) (storage.Principal, error){
			"disabled": func(o storage.Principal) (storage.Principal, error) { o.Disabled = true; return o, nil },
			"moved":    func(o storage.Principal) (storage.Principal, error) { o.OrgID = other.ID; return o, nil },
		} {
			t.Run(name, func(t *testing.T) {
				cl := newDryRunClient(t, e, oauth2.AuthMethodClientSecretBasic, []string{"judge"})
				res, err := c.TestPool(as(e.admin), &stsv1.TestPoolRequest{PoolId: "judge", SubjectToken: tok, ClientId: cl.ID, Scopes: []string{"read"}})
				if err != nil || !res.GetAllowed() {
					t.Fatalf("before: TestPool = %v, %v; want allowed", res.GetReason(), err)
				}
				if err := e.store.UpdatePrincipal(context.Background(), cl.PrincipalID, mut); err != nil {
					t.Fatal(err)
				}
				res, err = c.TestPool(as(e.admin), &stsv1.TestPoolRequest{PoolId: "judge", SubjectToken: tok, ClientId: cl.ID, Scopes: []string{"read"}})
				if err != nil {
					t.Fatal(err)
				}
				if res.GetAllowed() || res.GetReason() != "principal_disabled" {
					t.Errorf("service account %s: allowed = %v, reason %q; the exchange refuses the client principal_disabled", name, res.GetAllowed(), res.GetReason())
				}
				if d := stepDetail(res, "client"); !strings.Contains(d, "principal_disabled") {
					t.Errorf("client step %q, want it to name principal_disabled", d)
				}
			})
		}
	})
}

// TestDryRunDefaultScopeEmpty (docs/security.md T-214, T-151): with no
// scope asked for and a default of nothing but offline_access, the
// exchange refuses scope_default_empty; the dry run kept the scope as sent
// and said ALLOWED.
func TestDryRunDefaultScopeEmpty(t *testing.T) {
	onPoolBackends(t, func(t *testing.T, e *poolEnv) {
		c := e.poolClient(e.srv.URL)
		dryRunPool(t, e, "offline", true, oauth2.ScopeOfflineAccess)
		res, err := c.TestPool(as(e.admin), &stsv1.TestPoolRequest{PoolId: "offline", SubjectToken: e.sign(t, nil, "repo:acme/app", "acme")})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetAllowed() || res.GetReason() != "scope_default_empty" {
			t.Errorf("default scope only offline_access: allowed = %v, reason %q; the exchange refuses scope_default_empty", res.GetAllowed(), res.GetReason())
		}
	})
}
