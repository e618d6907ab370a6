package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestRequestedTokenTypeRefreshAndJWTBearer (docs/security.md T-53): the
// refresh_token and jwt-bearer grants read requested_token_type as token
// exchange does: …:access_token or none is answered issued_token_type
// …:access_token, …:jwt is answered …:jwt (Confluent's contract echoes
// it), and anything else (…:id_token) is 400 requested_token_type_unsupported,
// the refresh token left as it was. Before, neither read it: …:id_token
// got a 200 with an access token and …:jwt was answered …:access_token.
func TestRequestedTokenTypeRefreshAndJWTBearer(t *testing.T) {
	m := newMatrixEnv(t)
	c, sec := m.client(t, storage.Client{OrgID: "acme", Pools: []string{"mx"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer},
		GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken, oauth2.GrantTypeJWTBearer}})
	status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read offline_access"))
	rt, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt == "" {
		t.Fatalf("exchange = %d %v", status, body)
	}
	refresh := func(typ string) url.Values {
		return url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}, "requested_token_type": {typ}}
	}
	bearer := func(typ string) url.Values {
		return url.Values{"grant_type": {oauth2.GrantTypeJWTBearer}, "assertion": {m.subjectToken(t, "mx")}, "pool": {"mx"}, "requested_token_type": {typ}}
	}
	for _, g := range []struct {
		name string
		form func(string) url.Values
	}{{"refresh_token", refresh}, {"jwt-bearer", bearer}} {
		for _, tc := range []struct{ requested, issued string }{
			{"", oauth2.TokenTypeAccessToken},
			{oauth2.TokenTypeAccessToken, oauth2.TokenTypeAccessToken},
			{oauth2.TokenTypeJWT, oauth2.TokenTypeJWT},
			{oauth2.TokenTypeIDToken, ""},
			{"urn:example:unknown", ""},
		} {
			status, body := m.postAs(t, c.ID, sec, g.form(tc.requested))
			if tc.issued == "" {
				if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidRequest || body["reason"] != ReasonRequestedTypeUnsupp {
					t.Errorf("%s requesting %q = %d %v, want 400 invalid_request %s", g.name, tc.requested, status, body, ReasonRequestedTypeUnsupp)
				}
				continue
			}
			if status != http.StatusOK || body["issued_token_type"] != tc.issued || body["token_type"] != "Bearer" {
				t.Errorf("%s requesting %q = %d %v, want issued_token_type %s", g.name, tc.requested, status, body, tc.issued)
			}
			if next, _ := body["refresh_token"].(string); next != "" {
				rt = next
			}
		}
	}
	stored, err := m.store.GetRefreshTokenByDigest(t.Context(), secret.Digest(m.pepper, rt))
	if err != nil || !stored.RotatedAt.IsZero() || stored.Revoked {
		t.Errorf("the refresh token was spent by a refused requested_token_type (%v)", err)
	}
}

// TestRequestedTokenTypeClientCredentialsAndAuthCode (docs/security.md
// T-53; adopted from review): client_credentials and authorization_code
// mint the same access token at /oauth2/token and read
// requested_token_type as the other grants do; authorization_code before
// the code is looked up, so a refused type leaves the code for a corrected
// request. Before, both answered …:access_token whatever was asked, and
// …:id_token got a 200.
func TestRequestedTokenTypeClientCredentialsAndAuthCode(t *testing.T) {
	m := newMatrixEnv(t)
	c, sec := m.client(t, storage.Client{OrgID: "acme", Scopes: []string{"read"}, Audiences: []string{stsIssuer},
		GrantTypes: []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeAuthorizationCode}})
	for _, tc := range []struct{ requested, issued string }{
		{"", oauth2.TokenTypeAccessToken},
		{oauth2.TokenTypeAccessToken, oauth2.TokenTypeAccessToken},
		{oauth2.TokenTypeJWT, oauth2.TokenTypeJWT},
		{oauth2.TokenTypeIDToken, ""},
		{"urn:example:unknown", ""},
	} {
		forms := map[string]url.Values{
			"client_credentials": {"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}},
			"authorization_code": m.authCode(t, c, "ada", "read"),
		}
		for name, form := range forms {
			form.Set("requested_token_type", tc.requested)
			status, body := m.postAs(t, c.ID, sec, form)
			if tc.issued == "" {
				if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidRequest || body["reason"] != ReasonRequestedTypeUnsupp {
					t.Errorf("%s requesting %q = %d %v, want 400 invalid_request %s", name, tc.requested, status, body, ReasonRequestedTypeUnsupp)
				}
				// The refusal left the code: corrected, it is redeemed.
				form.Del("requested_token_type")
				if status, body := m.postAs(t, c.ID, sec, form); status != http.StatusOK {
					t.Errorf("%s after a refused %q = %d %v, want 200 (the code unspent)", name, tc.requested, status, body)
				}
				continue
			}
			if status != http.StatusOK || body["issued_token_type"] != tc.issued || body["token_type"] != "Bearer" {
				t.Errorf("%s requesting %q = %d %v, want issued_token_type %s", name, tc.requested, status, body, tc.issued)
			}
		}
	}
}
