package revoke_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/revoke"
	"github.com/opensts/sts/internal/storage"
)

// TestPublicClientRevokes: a registered public client (auth method none)
// revokes a token issued to it by naming itself with client_id alone, as
// RFC 7009 §5 allows ("a valid client_id, in the case of a public
// client") and Keycloak does; it revokes nothing of another client's, a
// confidential client still authenticates, and an unknown or disabled
// client_id is invalid_client (docs/security.md T-128).
func TestPublicClientRevokes(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	for _, c := range []storage.Client{
		{ID: "pub", OrgID: "o1", PrincipalID: "p1", AuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}},
		{ID: "off", OrgID: "o1", PrincipalID: "p1", AuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Disabled: true},
	} {
		if err := f.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	own, ownClaims := f.mint(t, f.keys, "pub")
	ofA, ofAClaims := f.mint(t, f.keys, "a")
	ofOff, ofOffClaims := f.mint(t, f.keys, "off")
	post := func(clientID, tok string) (*http.Response, string) {
		v := url.Values{"token": {tok}}
		if clientID != "" {
			v.Set("client_id", clientID)
		}
		return f.do(t, request{method: "POST", path: revoke.Path, contentType: form, body: v.Encode()})
	}

	refusals := []struct {
		name, clientID, token string
	}{
		{"confidential client without its secret", "a", ofA},
		{"unknown client", "nobody", own},
		{"disabled public client", "off", ofOff},
		{"no client at all", "", own},
	}
	for _, tc := range refusals {
		resp, body := post(tc.clientID, tc.token)
		var e struct{ Error string }
		if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error != oauth2.ErrorInvalidClient {
			t.Errorf("%s = %d %s, want 401 invalid_client", tc.name, resp.StatusCode, body)
		}
	}
	// Another client's valid token: the same 200 as any other, nothing
	// revoked (RFC 7009 §2.2, docs/security.md T-63).
	if resp, body := post("pub", ofA); resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "{}" {
		t.Errorf("public client revoking client a's token = %d %s, want 200 {}", resp.StatusCode, body)
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{{"a", f.revoked(t, ofAClaims)}, {"off", f.revoked(t, ofOffClaims)}, {"pub", f.revoked(t, ownClaims)}} {
		if c.ok {
			t.Fatalf("client %s's token revoked before the public client revoked its own", c.name)
		}
	}

	// Its own token: 200 once the row is stored.
	resp, body := post("pub", own)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "{}" {
		t.Fatalf("public client revoking its own token = %d %s, want 200 {}", resp.StatusCode, body)
	}
	if !f.revoked(t, ownClaims) {
		t.Fatal("public client's own token: no revocation row")
	}
	if f.revoked(t, ofAClaims) {
		t.Error("client a's token revoked")
	}
	evs := f.events(t)
	if !slices.ContainsFunc(evs, func(ev storage.AuditEvent) bool {
		return ev.Action == revoke.ActionTokenRevoke && ev.Actor == "client:pub" && ev.Target == "jti:"+ownClaims.ID
	}) {
		t.Errorf("audit events = %+v, want token.revoke by client:pub", evs)
	}
}
