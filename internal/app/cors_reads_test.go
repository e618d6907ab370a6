package app

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// corsExchange sends method to path from origin (none when empty) with
// form and returns the status and the CORS headers a browser reads.
func (e *oauthEnv) corsExchange(t *testing.T, method, path, origin string, form url.Values) (int, http.Header) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestCORSReads: the CORS decisions of the client endpoints read no more
// than the request's own client record (docs/api.md, "Cross-origin
// requests"; docs/security.md T-110). A preflight from an origin no client
// ever registered, however many, reads no client at all (it was a reload
// of every client of every organization, a denial of service anyone could
// drive); an answer at the client's origin reads nothing beyond what
// client authentication reads, with or without an Origin header; and a
// change to the client's redirect URIs made on this node is honoured at
// once.
func TestCORSReads(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	ctx := t.Context()
	svc, err := clients.NewService(e.store.Store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	sa := storage.Principal{ID: storage.NewID(), OrgID: "org", Kind: storage.PrincipalServiceAccount, Name: "spa"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	spa, _, err := svc.Create(ctx, clients.Caller{Actor: "test"}, clients.CreateInput{OrgID: "org", PrincipalID: sa.ID, Name: "SPA",
		AuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid"},
		Audiences: []string{"https://spa.example"}, RedirectURIs: []string{"https://spa.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("preflight from never-registered origins", func(t *testing.T) {
		before := e.store.clientReads.Load()
		for range 20 {
			origin := "https://" + strings.ToLower(rand.Text()) + ".example"
			for _, p := range []string{"/oauth2/token", "/oauth2/revoke"} {
				status, h := e.corsExchange(t, http.MethodOptions, p, origin, nil)
				if (status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Credentials") != "") && !t.Failed() {
					t.Errorf("preflight %s from %s = %d %v, want 204 answered for the origin, no credentials", p, origin, status, h)
				}
			}
		}
		if n := e.store.clientReads.Load() - before; n != 0 {
			t.Errorf("40 preflights from unregistered origins read %d client rows, want none", n)
		}
	})

	revoke := url.Values{"client_id": {spa.ID}, "token": {"not-a-token"}}
	// readable reports whether the public client's revocation (refused:
	// it is no token) is readable at origin, and how many client rows it
	// read.
	readable := func(t *testing.T, origin string) (bool, int64) {
		t.Helper()
		before := e.store.clientReads.Load()
		status, h := e.corsExchange(t, http.MethodPost, "/oauth2/revoke", origin, revoke)
		if status >= 500 {
			t.Fatalf("revocation by the public client from %q = %d", origin, status)
		}
		return h.Get("Access-Control-Allow-Origin") == origin, e.store.clientReads.Load() - before
	}

	t.Run("the answer reads only the client", func(t *testing.T) {
		_, bare := readable(t, "")
		ok, withOrigin := readable(t, "https://spa.example")
		if !ok {
			t.Error("revocation by the public client from its registered origin is not readable")
		}
		if withOrigin != bare || bare > 1 {
			t.Errorf("client rows read: %d without Origin, %d from its origin; want the same, at most the one client authentication reads", bare, withOrigin)
		}
		if ok, n := readable(t, "https://evil.example"); ok || n != bare {
			t.Errorf("from an unregistered origin: readable %v, %d client rows read; want unreadable, %d", ok, n, bare)
		}
	})

	t.Run("a change on this node is honoured at once", func(t *testing.T) {
		if err := e.records.UpdateClient(ctx, spa.ID, func(c storage.Client) (storage.Client, error) {
			c.RedirectURIs = []string{"https://spa2.example/cb"}
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		if ok, _ := readable(t, "https://spa2.example"); !ok {
			t.Error("the new redirect URI's origin is not readable at once")
		}
		if ok, _ := readable(t, "https://spa.example"); ok {
			t.Error("the removed redirect URI's origin is still readable")
		}
	})
}
