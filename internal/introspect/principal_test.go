package introspect_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestClientOfDisabledServiceAccountRefused: a client is its service
// account's credential; once the service account is disabled (suspended
// because its credentials leaked), its client no longer introspects,
// with the introspect permission or without it, on either path, while
// an enabled client goes on seeing the same token (docs/security.md A-94).
func TestClientOfDisabledServiceAccountRefused(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	if err := f.store.CreatePrincipal(ctx, storage.Principal{ID: "p2", OrgID: "o1", Kind: storage.PrincipalServiceAccount, Name: "rs"}); err != nil {
		t.Fatal(err)
	}
	rsSecret, ownSecret := secret.PrefixClientSecret.Generate(), secret.PrefixClientSecret.Generate()
	for _, c := range []storage.Client{
		// A resource server's client with the introspect permission.
		{ID: "rs", OrgID: "o1", PrincipalID: "p2", AuthMethod: oauth2.AuthMethodClientSecretBasic, SecretDigest: secret.Digest(f.pepper, rsSecret),
			GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Scopes: []string{introspect.ScopeIntrospect}},
		// A client of the same service account seeing its audience's tokens.
		{ID: "own", OrgID: "o1", PrincipalID: "p2", AuthMethod: oauth2.AuthMethodClientSecretBasic, SecretDigest: secret.Digest(f.pepper, ownSecret),
			GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Audiences: []string{"https://api.example"}},
	} {
		if err := f.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	tok, _ := f.mint(t, f.keys, now, now.Add(10*time.Minute)) // client a's, of principal p1
	ask := func(path, user, pass string) (int, map[string]any) {
		t.Helper()
		body, ct := tokenForm(tok), form
		if path == introspect.PathGoogle {
			body, ct = `{"token":"`+tok+`"}`, "application/json"
		}
		resp, b := f.do(t, request{method: "POST", path: path, contentType: ct, body: body, user: user, pass: pass})
		var m map[string]any
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("%s as %s: %d %q", path, user, resp.StatusCode, b)
		}
		return resp.StatusCode, m
	}
	for _, path := range []string{introspect.Path, introspect.PathGoogle} {
		for _, c := range []struct{ id, sec string }{{"rs", rsSecret}, {"own", ownSecret}} {
			if st, m := ask(path, c.id, c.sec); st != 200 || m["active"] != true {
				t.Fatalf("%s as %s before the disable: %d %v, want active", path, c.id, st, m)
			}
		}
	}
	if err := f.store.UpdatePrincipal(ctx, "p2", func(p storage.Principal) (storage.Principal, error) {
		p.Disabled = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{introspect.Path, introspect.PathGoogle} {
		for _, c := range []struct{ id, sec string }{{"rs", rsSecret}, {"own", ownSecret}} {
			if st, m := ask(path, c.id, c.sec); st != 401 || m["error"] != oauth2.ErrorInvalidClient || m["active"] != nil {
				t.Errorf("%s as %s of a disabled service account: %d %v, want 401 invalid_client", path, c.id, st, m)
			}
		}
		// Client a's service account is enabled: it still sees its token.
		if st, m := ask(path, "a", f.secretA); st != 200 || m["active"] != true {
			t.Errorf("%s as a: %d %v, want active", path, st, m)
		}
	}
}

// TestClientOfGoneOrMovedServiceAccountRefused: a client whose service
// account is deleted, or of another organization than the client, is
// refused as one of a disabled service account is (401 invalid_client),
// and a failed read of the service account is 503 with Retry-After, never
// an answer (docs/security.md A-94).
func TestClientOfGoneOrMovedServiceAccountRefused(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	if err := f.store.CreateOrganization(ctx, storage.Organization{ID: "o2", Name: "Two"}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreatePrincipal(ctx, storage.Principal{ID: "p-o2", OrgID: "o2", Kind: storage.PrincipalServiceAccount, Name: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	for _, c := range []storage.Client{
		{ID: "gone", OrgID: "o1", PrincipalID: "p-deleted"},
		{ID: "moved", OrgID: "o1", PrincipalID: "p-o2"},
	} {
		c.AuthMethod, c.SecretDigest, c.Scopes = oauth2.AuthMethodClientSecretBasic, secret.Digest(f.pepper, sec), []string{introspect.ScopeIntrospect}
		if err := f.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	tok, _ := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	ask := func(user, pass string) (*http.Response, map[string]any) {
		t.Helper()
		resp, b := f.do(t, request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(tok), user: user, pass: pass})
		var m map[string]any
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("as %s: %d %q", user, resp.StatusCode, b)
		}
		return resp, m
	}
	for _, id := range []string{"gone", "moved"} {
		if resp, m := ask(id, sec); resp.StatusCode != 401 || m["error"] != oauth2.ErrorInvalidClient || m["active"] != nil {
			t.Errorf("as %s: %d %v, want 401 invalid_client", id, resp.StatusCode, m)
		}
	}
	f.principalsDown.Store(true)
	resp, m := ask("a", f.secretA)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" || m["active"] != nil {
		t.Errorf("service account unreadable: %d Retry-After %q %v, want 503 with Retry-After 7", resp.StatusCode, resp.Header.Get("Retry-After"), m)
	}
	f.principalsDown.Store(false)
	if resp, m := ask("a", f.secretA); resp.StatusCode != 200 || m["active"] != true {
		t.Errorf("storage back: %d %v, want active", resp.StatusCode, m)
	}
}
