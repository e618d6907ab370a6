package tokens_test

import (
	"testing"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// TestStoreSourcesNarrowed: a token holding a scope its client
// (client_id) or its pool no longer allows is refused; a token
// within what they still allow lives on, and widening them ends nothing
// (docs/security.md A-52). A pool's "*" admits our API's scopes for a
// principal of ours, as exchange does.
func TestStoreSourcesNarrowed(t *testing.T) {
	ctx := t.Context()
	s, sa := sourceStore(t, storage.PrincipalServiceAccount)
	cl := sourceClient(t, s, sa.ID)
	setScopes := func(l ...string) {
		t.Helper()
		if err := s.UpdateClient(ctx, cl.ID, func(old storage.Client) (storage.Client, error) {
			old.Scopes = l
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	pools := fakePools{
		"narrow": {pool: &trust.Pool{Pool: storage.Pool{ID: "narrow", OrgID: "acme", Scopes: []string{"read"}}}},
		"wide":   {pool: &trust.Pool{Pool: storage.Pool{ID: "wide", OrgID: "acme", Scopes: []string{"read", "write"}}}},
		"api":    {pool: &trust.Pool{Pool: storage.Pool{ID: "api", OrgID: "acme", Scopes: []string{"*"}}}},
		"api-sa": {pool: &trust.Pool{Pool: storage.Pool{ID: "api-sa", OrgID: "acme", Scopes: []string{"*"}, PrincipalID: sa.ID}}},
	}
	f := newFixture(t, signer.ES256)
	src := tokens.NewStoreSources(s, pools)
	src.TTL, src.Now, src.Audiences = 0, f.clock.Now, []string{testAud}
	f.verifier.Sources = src
	verify := func(edit func(c *tokens.AccessClaims)) string {
		t.Helper()
		return f.reason(t, f.mintWith(t, func(c *tokens.AccessClaims) {
			c.OrgID, c.Principal, c.ClientID, c.Pool, c.Scope = "acme", "", "", "", "read write"
			edit(c)
		}))
	}
	issuedTo := func(c *tokens.AccessClaims) { c.ClientID = cl.ID }
	reExchanged := func(c *tokens.AccessClaims) { c.SourceClientIDs = []string{cl.ID} }
	readOnly := func(c *tokens.AccessClaims) { c.ClientID, c.Scope = cl.ID, "read" }
	for name, edit := range map[string]func(*tokens.AccessClaims){"client_id": issuedTo, "src_client_id": reExchanged, "read only": readOnly} {
		if r := verify(edit); r != "" {
			t.Errorf("%s, within the client's scopes: %s", name, r)
		}
	}
	setScopes("read")
	if r := verify(issuedTo); r != "token_source_gone" {
		t.Errorf("write taken from the client: reason %q, want token_source_gone", r)
	}
	if r := verify(readOnly); r != "" {
		t.Errorf("a token within what the client still allows: %s", r)
	}
	// An earlier client (src_client_id) bounds nothing: the token's scope
	// was judged against its own client's list, and one an exchange token
	// bought holds its principal's access whatever its creator's client
	// held. It still ends when that client is disabled.
	if r := verify(reExchanged); r != "" {
		t.Errorf("write taken from an earlier client: %s", r)
	}
	setScopes("read", "write", "admin")
	if r := verify(issuedTo); r != "" {
		t.Errorf("the client widened: %s", r)
	}

	for _, tc := range []struct {
		pool, principal, scope, want string
	}{
		{"wide", "", "read write", ""},
		{"narrow", "", "read write", "token_source_gone"},
		{"narrow", "", "read", ""},
		{"api-sa", string(storage.PrincipalServiceAccount), "identity:read", ""}, // "*" admits our API's scopes for a principal
		{"api", "", "identity:read", "token_source_gone"},                        // but not for an identity that is none of ours
		{"api-sa", string(storage.PrincipalServiceAccount), "sts:admin", "token_source_gone"},
	} {
		r := verify(func(c *tokens.AccessClaims) {
			c.Pool, c.Provider, c.Scope, c.Principal = tc.pool, "p", tc.scope, tc.principal
			if tc.principal != "" {
				c.Subject = sa.ID
			}
		})
		if r != tc.want {
			t.Errorf("pool %s, principal %q, scope %q: reason %q, want %q", tc.pool, tc.principal, tc.scope, r, tc.want)
		}
	}
}

// TestStoreSourcesAllowlistsNarrowed: a token is refused once its client
// (client_id) no longer lists its pool or one of its audiences, once its
// pool no longer allows one of its audiences, or once its pool no longer
// binds the principal it acts as (rebound, unbound, or bound since): what
// the token endpoint and the refresh grant would no longer issue
// (docs/security.md ). The server's own audiences stay allowed
// through every pool, as at the exchange; an earlier client
// (src_client_id) bounds neither; a cached copy that refuses is read
// again, so a list widened on another node is seen at once.
func TestStoreSourcesAllowlistsNarrowed(t *testing.T) {
	const kafka = "https://kafka.example"
	ctx := t.Context()
	s, sa := sourceStore(t, storage.PrincipalServiceAccount)
	cl := sourceClient(t, s, sa.ID)
	setLists := func(st storage.Store, pools, auds []string) {
		t.Helper()
		if err := st.UpdateClient(ctx, cl.ID, func(old storage.Client) (storage.Client, error) {
			old.Pools, old.Audiences = pools, auds
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setLists(s, []string{"ci", "bound"}, []string{testAud, kafka})
	pool := func(id, principal string, auds ...string) *trust.Pool {
		return &trust.Pool{Pool: storage.Pool{ID: id, OrgID: "acme", Scopes: []string{"read", "write"}, PrincipalID: principal, Audiences: auds}}
	}
	pools := fakePools{
		"ci":      {pool: pool("ci", "", kafka)},
		"ci-less": {pool: pool("ci-less", "")},        // ci once it no longer allows kafka
		"bound":   {pool: pool("bound", sa.ID)},       // acts as sa
		"rebound": {pool: pool("rebound", "other")},   // bound to another principal since
		"unbound": {pool: pool("unbound", "")},        // unbound since
		"bind":    {pool: pool("bind", sa.ID, kafka)}, // bound since its tokens were issued
	}
	f := newFixture(t, signer.ES256)
	src := tokens.NewStoreSources(s, pools)
	src.TTL, src.Now, src.Audiences = 0, f.clock.Now, []string{testAud}
	f.verifier.Sources = src
	verify := func(edit func(c *tokens.AccessClaims)) string {
		t.Helper()
		tok := f.mintWith(t, func(c *tokens.AccessClaims) {
			c.OrgID, c.Principal, c.ClientID, c.Pool, c.Provider, c.Scope = "acme", "", "", "", "", "read"
			edit(c)
		})
		_, err := f.verifier.VerifyAccessTokenAnyAudience(ctx, tok)
		return tokens.Reason(err)
	}
	through := func(pool string, aud ...string) func(*tokens.AccessClaims) {
		return func(c *tokens.AccessClaims) {
			c.ClientID, c.Pool, c.Provider, c.Audience = cl.ID, pool, "p", aud
		}
	}
	asSA := func(pool string) func(*tokens.AccessClaims) {
		return func(c *tokens.AccessClaims) {
			c.Pool, c.Provider, c.Subject, c.Principal = pool, "p", sa.ID, string(storage.PrincipalServiceAccount)
		}
	}
	earlier := func(c *tokens.AccessClaims) {
		c.SourceClientIDs, c.Pool, c.Provider, c.Audience = []string{cl.ID}, "ci", "p", tokens.Audience{kafka}
	}

	for _, tc := range []struct {
		name string
		edit func(*tokens.AccessClaims)
		want string
	}{
		{"client's pool and audiences", through("ci", kafka, testAud), ""},
		{"no pool, an audience of the client", func(c *tokens.AccessClaims) { c.ClientID, c.Audience = cl.ID, tokens.Audience{kafka} }, ""},
		{"pool no longer allows the audience", through("ci-less", kafka), "token_source_gone"},
		{"the server's audience through any pool", func(c *tokens.AccessClaims) { c.Pool, c.Provider = "ci-less", "p" }, ""},
		{"bound pool, acting as its principal", asSA("bound"), ""},
		{"pool rebound", asSA("rebound"), "token_source_gone"},
		{"pool unbound", asSA("unbound"), "token_source_gone"},
		{"pool bound since", func(c *tokens.AccessClaims) { c.Pool, c.Provider = "bind", "p" }, "token_source_gone"},
		{"earlier client", earlier, ""},
	} {
		if r := verify(tc.edit); r != tc.want {
			t.Errorf("%s: reason %q, want %q", tc.name, r, tc.want)
		}
	}

	// The client's lists narrowed: its pool, then an audience.
	setLists(s, []string{"bound"}, []string{testAud, kafka})
	if r := verify(through("ci", kafka)); r != "token_source_gone" {
		t.Errorf("pool taken from the client: reason %q, want token_source_gone", r)
	}
	if r := verify(earlier); r != "" {
		t.Errorf("pool taken from an earlier client: %s", r)
	}
	setLists(s, []string{"ci", "bound"}, []string{testAud})
	if r := verify(through("ci", kafka, testAud)); r != "token_source_gone" {
		t.Errorf("audience taken from the client: reason %q, want token_source_gone", r)
	}
	if r := verify(through("ci", testAud)); r != "" {
		t.Errorf("a token for an audience the client still lists: %s", r)
	}
	if r := verify(earlier); r != "" {
		t.Errorf("audience taken from an earlier client: %s", r)
	}

	// Over the node's record cache: narrowed through it, refused at once;
	// widened on another node (the store itself), accepted at once.
	records := cache.New(s)
	records.Now = f.clock.Now
	src.Store = records
	setLists(records, []string{"bound"}, []string{testAud})
	if r := verify(through("ci", kafka)); r != "token_source_gone" {
		t.Errorf("narrowed on this node: reason %q, want token_source_gone at once", r)
	}
	setLists(s, []string{"ci", "bound"}, []string{testAud, kafka})
	if r := verify(through("ci", kafka)); r != "" {
		t.Errorf("widened on another node: reason %q, want accepted at once", r)
	}
}
