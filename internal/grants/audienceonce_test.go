package grants

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAudienceAndResourceNamedOnce (docs/security.md T-236): a target
// named both as audience and as resource (RFC 8693 §2.1 lets a client
// send both) is one audience of the issued token. It was carried twice,
// "aud":["A","A"], which a resource server or a relying party that takes
// a token for exactly one audience (sts's own providers without
// allow_multiple_audiences) refuses as a token for several. The same at
// token exchange and at client_credentials.
func TestAudienceAndResourceNamedOnce(t *testing.T) {
	const api = "https://api.example"
	t.Run("token exchange", func(t *testing.T) {
		e := newEnv(t, nil)
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		resp, body := e.post(t, PathToken, exchangeForm(tok, "pool", "ci", "audience", api, "resource", api))
		audOnce(t, resp, body, api)
	})
	t.Run("client_credentials", func(t *testing.T) {
		m := newMatrixEnv(t)
		c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeClientCredentials},
			Scopes: []string{"read"}, Audiences: []string{api}})
		form := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}, "audience": {api}, "resource": {api}}
		req, _ := http.NewRequest(http.MethodPost, m.srv.URL+PathToken, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, sec)
		resp, body := do(t, req)
		audOnce(t, resp, body, api)
	})
}

// audOnce checks that the token answered names api once in its aud.
func audOnce(t *testing.T, resp *http.Response, body map[string]any, api string) {
	t.Helper()
	at, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || at == "" {
		t.Fatalf("token request = %d %v %v, want 200", resp.StatusCode, body["error"], body["reason"])
	}
	seg := strings.Split(at, ".")[1]
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	var one string
	var many []string
	if json.Unmarshal(payload.Aud, &one) != nil && (json.Unmarshal(payload.Aud, &many) != nil || len(many) != 1 || many[0] != api) {
		t.Errorf("aud = %s, want %q once", payload.Aud, api)
	} else if one != "" && one != api {
		t.Errorf("aud = %s, want %q", payload.Aud, api)
	}
}
