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

// TestClientPoolPolicy: docs/security.md T-55. An authenticated client
// exchanges only against pools of its own organization, and only those on
// its allowlist (an empty list allows none); "locked" requires a client.
func TestClientPoolPolicy(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if err := e.store.CreateOrganization(ctx, storage.Organization{ID: "globex", Name: "Globex", Tier: "free"}); err != nil {
		t.Fatal(err)
	}
	pepper := []byte(strings.Repeat("p", 32))
	mk := func(org string, pools ...string) (storage.Client, string) {
		sec := secret.PrefixClientSecret.Generate()
		c := storage.Client{ID: storage.NewID(), OrgID: org, PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
			SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: pools, Scopes: []string{"read"},
			Audiences: []string{stsIssuer}}
		if err := e.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c, sec
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}

	claims := e.issuer.claims(time.Now(), "u1")
	claims["aud"] = "locked"
	tok := e.issuer.mint(t, "RS256", claims)
	exchange := func(c storage.Client, sec string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(exchangeForm(tok, "pool", "locked").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, sec)
		resp, body := do(t, req)
		reason, _ := body["reason"].(string)
		return resp.StatusCode, reason
	}

	for _, tc := range []struct {
		name       string
		org        string
		pools      []string
		wantStatus int
	}{
		{"same organization, empty allowlist", "acme", nil, http.StatusBadRequest},
		{"same organization, pool allowed", "acme", []string{"locked"}, http.StatusOK},
		{"same organization, pool not on the allowlist", "acme", []string{"ci"}, http.StatusBadRequest},
		{"another organization, no allowlist", "globex", nil, http.StatusBadRequest},
		{"another organization listing the pool", "globex", []string{"locked"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sec := mk(tc.org, tc.pools...)
			code, reason := exchange(c, sec)
			if code != tc.wantStatus || (code != http.StatusOK && reason != ReasonClientPoolNotAllowed) {
				t.Errorf("exchange = %d %s, want %d (reason %s when refused)", code, reason, tc.wantStatus, ReasonClientPoolNotAllowed)
			}
		})
	}
}
