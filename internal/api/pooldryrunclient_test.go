package api

import (
	"strings"
	"testing"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestDryRunJudgesTheClient (docs/security.md T-214): PoolService/TestPool
// with a client_id judges that client as the exchange does, by the
// exchange's own check (clientauth.Check): a confidential client that may
// not use the token-exchange grant, does not list the pool, is disabled,
// or does not list a scope or an audience the exchange would issue is
// refused, with the exchange's reason (the token endpoint's for each is
// pinned in package grants). The dry run said allowed for every one of
// them. Public clients: TestDryRunPublicClientIsAnonymous.
func TestDryRunJudgesTheClient(t *testing.T) {
	onPoolBackends(t, func(t *testing.T, e *poolEnv) {
		c := e.poolClient(e.srv.URL)
		ctx := as(e.admin)
		const kafka = "https://kafka.example"
		p := e.validPool("judge")
		// A pool that requires a client: each refusal below is then one the
		// exchange makes (an open pool would admit an anonymous caller).
		p.Scopes, p.Audiences, p.AllowUnauthenticated = []string{"read", "deploy"}, []string{kafka}, false
		if _, err := c.CreatePool(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateProvider(ctx, e.validProvider("judge", "gh")); err != nil {
			t.Fatal(err)
		}
		tok := e.sign(t, nil, "repo:acme/app", "acme")
		client := func(mut func(*storage.Client)) string {
			return newDryRunClient(t, e, oauth2.AuthMethodClientSecretBasic, []string{"judge"},
				func(c *storage.Client) { c.Audiences = []string{kafka, testIssuer} }, mut).ID
		}
		for _, tc := range []struct {
			name   string
			client string
			req    *stsv1.TestPoolRequest
			reason string // "" allowed
		}{
			{"a client that may", client(func(*storage.Client) {}), &stsv1.TestPoolRequest{Scopes: []string{"read"}, Audiences: []string{kafka}}, ""},
			{"pool not on the client's list", client(func(c *storage.Client) { c.Pools = []string{"other"} }),
				&stsv1.TestPoolRequest{Scopes: []string{"read"}}, "client_pool_not_allowed"},
			{"no token-exchange grant", client(func(c *storage.Client) { c.GrantTypes = []string{oauth2.GrantTypeClientCredentials} }),
				&stsv1.TestPoolRequest{Scopes: []string{"read"}}, "client_grant_not_allowed"},
			{"disabled client", client(func(c *storage.Client) { c.Disabled = true }),
				&stsv1.TestPoolRequest{Scopes: []string{"read"}}, "client_auth_failed"},
			{"a scope of the pool the client lacks", client(func(*storage.Client) {}),
				&stsv1.TestPoolRequest{Scopes: []string{"deploy"}}, "scope_exceeds_client"},
			{"an audience of the pool the client lacks", client(func(c *storage.Client) { c.Audiences = []string{testIssuer} }),
				&stsv1.TestPoolRequest{Scopes: []string{"read"}, Audiences: []string{kafka}}, "audience_not_allowed"},
			{"the default audience the client lacks", client(func(c *storage.Client) { c.Audiences = []string{kafka} }),
				&stsv1.TestPoolRequest{Scopes: []string{"read"}}, "audience_not_allowed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.req.PoolId, tc.req.SubjectToken, tc.req.ClientId = "judge", tok, tc.client
				res, err := c.TestPool(ctx, tc.req)
				if err != nil {
					t.Fatal(err)
				}
				if got := res.GetAllowed(); got != (tc.reason == "") || res.GetReason() != tc.reason {
					t.Errorf("allowed = %v, reason %q; want reason %q, as the exchange refuses", got, res.GetReason(), tc.reason)
				}
				if tc.reason != "" && !strings.Contains(stepDetail(res, "client"), tc.reason) {
					t.Errorf("client step %q, want it to name %s", stepDetail(res, "client"), tc.reason)
				}
			})
		}
	})
}

// TestDryRunWithoutClientSaysThePoolNeedsOne (docs/security.md T-214):
// PoolService/TestPool without a client_id tests the pool whoever calls
// and stays ALLOWED, but at a pool that requires an authenticated client
// (allow_unauthenticated false) the exchange refuses an anonymous caller:
// a client step says so, with the exchange's reason. An open pool gets
// no such step.
func TestDryRunWithoutClientSaysThePoolNeedsOne(t *testing.T) {
	t.Parallel()
	e := newPoolEnvOn(t, newSQLiteStore(t))
	c := e.poolClient(e.srv.URL)
	ctx := as(e.admin)
	tok := e.sign(t, nil, "repo:acme/app", "acme")
	for _, open := range []bool{false, true} {
		id := "closed"
		if open {
			id = "open"
		}
		p := e.validPool(id)
		p.AllowUnauthenticated = open
		if _, err := c.CreatePool(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateProvider(ctx, e.validProvider(id, "gh")); err != nil {
			t.Fatal(err)
		}
		res, err := c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, SubjectToken: tok, Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.GetAllowed() {
			t.Errorf("pool %s without client_id: denied %s, want ALLOWED (the pool is tested whoever calls)", id, res.GetReason())
		}
		d := stepDetail(res, "client")
		switch {
		case !open && (!strings.Contains(d, "requires an authenticated client") || !strings.Contains(d, "client_auth_required")):
			t.Errorf("pool %s (allow_unauthenticated false) without client_id: client step %q, want it to say the exchange refuses an anonymous caller", id, d)
		case open && d != "":
			t.Errorf("pool %s (allow_unauthenticated) without client_id: client step %q, want none", id, d)
		}
	}
}
