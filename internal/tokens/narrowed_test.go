package tokens_test

import (
	"testing"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
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
	}
	f := newFixture(t, signer.ES256)
	src := tokens.NewStoreSources(s, pools)
	src.TTL, src.Now = 0, f.clock.Now
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
		{"api", string(storage.PrincipalServiceAccount), "identity:read", ""}, // "*" admits our API's scopes for a principal
		{"api", "", "identity:read", "token_source_gone"},                     // but not for an identity that is none of ours
		{"api", string(storage.PrincipalServiceAccount), "sts:admin", "token_source_gone"},
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
