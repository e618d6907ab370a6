package grants

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// principalsDown fails every principal read, as a database down for a
// moment would.
type principalsDown struct{ storage.PrincipalStore }

func (principalsDown) GetPrincipal(context.Context, string) (storage.Principal, error) {
	return storage.Principal{}, errors.New("database is down")
}

// TestClientCredentialsPrincipalStorageDownIsUnavailable: a
// client_credentials request whose client principal storage could not
// read is 503 temporarily_unavailable with Retry-After, as every storage
// failure of the token endpoint (docs/security.md "Conventions"), and
// sends no token. It was 500 server_error, which a client does not retry.
func TestClientCredentialsPrincipalStorageDownIsUnavailable(t *testing.T) {
	m := newMatrixEnv(t)
	const aud = "https://api.example"
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeClientCredentials},
		Scopes: []string{"read"}, Audiences: []string{aud}})
	var cc *ClientCredentials
	for _, g := range m.handler.Grants {
		if g, ok := g.(*ClientCredentials); ok {
			if cc != nil {
				t.Fatal("two client_credentials grants on the handler, want 1")
			}
			cc = g
		}
	}
	auth := m.handler.Clients.(Clients).Authenticator
	// The principal is read once: by client authentication when it judges
	// the service account, else by the grant.
	for _, down := range []string{"at client authentication", "at the grant"} {
		if down == "at client authentication" {
			m.handler.Clients, cc.Principals = Clients{Authenticator: auth, Principals: principalsDown{m.store}}, m.store
		} else {
			m.handler.Clients, cc.Principals = Clients{Authenticator: auth}, principalsDown{m.store}
		}
		form := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}, "audience": {aud}}
		req, _ := http.NewRequest(http.MethodPost, m.srv.URL+PathToken, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, sec)
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" ||
			resp.Header.Get("Retry-After") != "5" || body["access_token"] != nil {
			t.Errorf("client_credentials with principal storage down %s: %d, Retry-After %q, %v (token issued: %v); "+
				"want 503 temporarily_unavailable, Retry-After 5, no token", down, resp.StatusCode, resp.Header.Get("Retry-After"), body["error"], body["access_token"] != nil)
		}
	}
}
