package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestPublicClientTokenExchange sends exactly what openid-client 6
// (oauth4webapi, client authentication None()) sends for a token
// exchange: the form with client_id last, no Authorization header. A
// registered public client is identified, not authenticated: it exchanges
// against pools that admit unauthenticated callers, and nowhere else.
func TestPublicClientTokenExchange(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	pepper := []byte(strings.Repeat("p", 32))
	public := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "spa", AuthMethod: oauth2.AuthMethodNone,
		GrantTypes: []string{oauth2.GrantTypeTokenExchange}}
	confidential := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "svc", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, secret.PrefixClientSecret.Generate()), GrantTypes: []string{oauth2.GrantTypeTokenExchange}}
	disabled := public
	disabled.ID, disabled.Disabled = storage.NewID(), true
	for _, c := range []storage.Client{public, confidential, disabled} {
		if err := e.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}

	send := func(clientID, pool, aud string) (int, map[string]any) {
		c := e.issuer.claims(time.Now(), "browser-user")
		c["aud"] = aud
		body := "grant_type=" + url.QueryEscape(oauth2.GrantTypeTokenExchange) +
			"&subject_token=" + url.QueryEscape(e.issuer.mint(t, "RS256", c)) +
			"&subject_token_type=" + url.QueryEscape(oauth2.TokenTypeJWT) +
			"&pool=" + pool + "&client_id=" + url.QueryEscape(clientID)
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
		r.Header.Set("Accept", "application/json")
		r.Header.Set("User-Agent", "oauth4webapi/v3.8.3")
		resp, out := do(t, r)
		return resp.StatusCode, out
	}
	if status, out := send(public.ID, "ci", "sts"); status != 200 {
		t.Fatalf("public client against an unauthenticated pool: %d %v", status, out)
	}
	// Identified is not authenticated: a pool that requires a client refuses
	// it, as an anonymous caller, with the answer of no such pool
	// (docs/security.md T-102).
	if status, out := send(public.ID, "locked", "locked"); status != 400 || out["error"] != oauth2.ErrorInvalidRequest || out["reason"] != ReasonClientAuthRequired {
		t.Errorf("public client against a pool that requires authentication: %d %v", status, out)
	}
	// A confidential client must still prove itself; unknown and disabled clients are refused.
	for name, id := range map[string]string{"confidential": confidential.ID, "disabled": disabled.ID, "unknown": storage.NewID()} {
		if status, out := send(id, "ci", "sts"); status != 401 || out["error"] != oauth2.ErrorInvalidClient {
			t.Errorf("%s client_id alone: %d %v, want 401 invalid_client", name, status, out)
		}
	}
}
