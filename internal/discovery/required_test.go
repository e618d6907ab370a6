package discovery_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/opensts/sts/internal/discovery"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/signer"
)

// TestRequiredMembers: OIDC Discovery 1.0 §3 requires non-empty
// response_types_supported and subject_types_supported; RFC 8414 §2
// requires the endpoint auth signing algorithms of introspection and
// revocation when private_key_jwt is listed for them; a server that admits
// public clients lists the none method for the token and revocation
// endpoints, never for introspection.
func TestRequiredMembers(t *testing.T) {
	st, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	sup := discovery.Supported{
		GrantTypes:                   []string{oauth2.GrantTypeTokenExchange},
		TokenEndpointAuthMethods:     []string{oauth2.AuthMethodClientSecretBasic, oauth2.AuthMethodPrivateKeyJWT},
		TokenEndpointAuthSigningAlgs: []string{"RS256", "ES256"},
		PublicClients:                true,
	}
	srv := httptest.NewServer(mountHandler(&discovery.Handler{Issuer: "https://sts.example", Keys: st, Supported: sup}))
	defer srv.Close()
	resp, body := get(t, srv.URL+discovery.PathOpenIDConfiguration)
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	list := func(k string) []string {
		l, _ := m[k].([]any)
		out := make([]string, 0, len(l))
		for _, v := range l {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	for _, k := range []string{"response_types_supported", "subject_types_supported",
		"introspection_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"} {
		if len(list(k)) == 0 {
			t.Errorf("%s is missing or empty: %v", k, m[k])
		}
	}
	if !slices.Contains(list("token_endpoint_auth_methods_supported"), oauth2.AuthMethodNone) {
		t.Errorf("token_endpoint_auth_methods_supported = %v, want none listed", m["token_endpoint_auth_methods_supported"])
	}
	// A public client revokes its own tokens with client_id alone (RFC
	// 7009 §5); none authenticates nobody at introspection.
	if !slices.Contains(list("revocation_endpoint_auth_methods_supported"), oauth2.AuthMethodNone) {
		t.Errorf("revocation_endpoint_auth_methods_supported = %v, want none listed", m["revocation_endpoint_auth_methods_supported"])
	}
	if slices.Contains(list("introspection_endpoint_auth_methods_supported"), oauth2.AuthMethodNone) {
		t.Errorf("none listed for introspection: %v", m["introspection_endpoint_auth_methods_supported"])
	}
}

func mountHandler(h *discovery.Handler) http.Handler {
	mux := http.NewServeMux()
	h.Mount(mux)
	return mux
}

// TestAuthorizationEndpointMembers: with the browser flow the document
// names the authorization endpoint, response type code and S256 alone
// (RFC 8414 §2, RFC 7636 §6.2); without it none of them appears, and
// response types stay ["id_token"]. With it request_uri_parameter_supported
// is false, present (OIDC Discovery §3: absent means true).
func TestAuthorizationEndpointMembers(t *testing.T) {
	st, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	for _, with := range []bool{true, false} {
		sup := discovery.Supported{GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, AuthorizationEndpoint: with}
		srv := httptest.NewServer(mountHandler(&discovery.Handler{Issuer: "https://sts.example", Keys: st, Supported: sup}))
		_, body := get(t, srv.URL+discovery.PathOAuthServer)
		srv.Close()
		var m struct {
			Authorize  string   `json:"authorization_endpoint"`
			Responses  []string `json:"response_types_supported"`
			Challenges []string `json:"code_challenge_methods_supported"`
			Iss        bool     `json:"authorization_response_iss_parameter_supported"`
			RequestURI *bool    `json:"request_uri_parameter_supported"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if with && (m.Authorize != "https://sts.example/oauth2/authorize" || !slices.Equal(m.Responses, []string{"code"}) ||
			!slices.Equal(m.Challenges, []string{"S256"}) || !m.Iss || m.RequestURI == nil || *m.RequestURI) {
			t.Errorf("with the authorization endpoint: %+v", m)
		}
		if !with && (m.Authorize != "" || !slices.Equal(m.Responses, []string{"id_token"}) || m.Challenges != nil || m.Iss || m.RequestURI != nil) {
			t.Errorf("without the authorization endpoint: %+v", m)
		}
	}
}
