package discovery

import (
	"slices"

	"github.com/opensts/sts/internal/oauth2"
)

// Paths of the documents this package serves and of the endpoints it
// advertises (docs/design.md#wire-surface).
const (
	PathOpenIDConfiguration = "/.well-known/openid-configuration"
	PathOAuthServer         = "/.well-known/oauth-authorization-server"
	PathJWKS                = "/.well-known/jwks.json"
	PathToken               = "/oauth2/token"
	PathIntrospect          = "/oauth2/introspect"
	PathRevoke              = "/oauth2/revoke"
	PathAuthorize           = "/oauth2/authorize"
	PathEndSession          = "/oauth2/logout"
	PathUserInfo            = "/oauth2/userinfo"
)

// Metadata is the server metadata document shared by OIDC Discovery 1.0 §3
// and RFC 8414 §2. Lists are always present, even when empty: an absent
// grant_types_supported would mean ["authorization_code", "implicit"]
// (RFC 8414 §2), which we do not support.
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	// AuthorizationEndpoint is set when the server offers the
	// authorization_code grant's browser flow.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// EndSessionEndpoint is OpenID Connect RP-Initiated Logout 1.0's,
	// served with the authorization endpoint.
	EndSessionEndpoint string `json:"end_session_endpoint,omitempty"`
	// UserInfoEndpoint is OIDC Core §5.3's, served with the
	// authorization endpoint.
	UserInfoEndpoint string `json:"userinfo_endpoint,omitempty"`
	// CodeChallengeMethodsSupported is ["S256"] with the authorization
	// endpoint (RFC 8414 §2, RFC 7636); plain is never accepted.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported: the authorization
	// response carries iss (RFC 9207).
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// RequestURIParameterSupported is false with the authorization
	// endpoint: OIDC Discovery §3 makes an absent member true, and the
	// endpoint answers request_uri_not_supported (request objects by value
	// are not supported either, which an absent member already says).
	RequestURIParameterSupported *bool `json:"request_uri_parameter_supported,omitempty"`

	GrantTypesSupported    []string `json:"grant_types_supported"`
	ResponseTypesSupported []string `json:"response_types_supported"`
	// ResponseModesSupported is ["query"] with the browser flow: an absent
	// list would mean query and fragment (OIDC Discovery §3).
	ResponseModesSupported []string `json:"response_modes_supported,omitempty"`
	SubjectTypesSupported  []string `json:"subject_types_supported"`
	ScopesSupported        []string `json:"scopes_supported"`
	ClaimsSupported        []string `json:"claims_supported"`

	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	// RFC 8414 §2: REQUIRED (with none excluded) when private_key_jwt is
	// listed for the endpoint.
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`

	// IDTokenSigningAlgValuesSupported is REQUIRED by OIDC Discovery §3;
	// go-oidc falls back to RS256 alone without it.
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
}

// Supported lists what the server supports. The server fills it; later
// features append to it (for example a new grant type).
type Supported struct {
	// GrantTypes for grant_types_supported (oauth2.GrantType* values).
	GrantTypes []string
	// TokenEndpointAuthMethods (oauth2.AuthMethod* values); introspection
	// and revocation use the same client authentication.
	TokenEndpointAuthMethods []string
	// TokenEndpointAuthSigningAlgs for private_key_jwt, if offered.
	TokenEndpointAuthSigningAlgs []string
	// PublicClients lists the none method at the token and revocation
	// endpoints: a registered public client names itself with client_id
	// and no secret (RFC 7009 §5). Introspection never takes it.
	PublicClients bool
	// ResponseTypes defaults to ["id_token"] without an authorization
	// endpoint (OIDC Discovery §3 requires a non-empty list), and to
	// ["code"] with one.
	ResponseTypes []string
	// AuthorizationEndpoint advertises GET /oauth2/authorize (code flow
	// with PKCE S256 only).
	AuthorizationEndpoint bool
	// SubjectTypes defaults to ["public"].
	SubjectTypes []string
	Scopes       []string
	Claims       []string
}

// DefaultClaims are the claims our tokens may carry (docs/design.md#tokens),
// azp among them: an ID token for several audiences names the one it was
// issued to (OIDC Core §2).
var DefaultClaims = []string{
	"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "jti", "client_id", "scope",
	"org_id", "principal", "act", "pool", "provider", "attributes", "cab", "src",
	"name", "email",
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// metadata builds the document for issuer with algs as the signing
// algorithms of our published keys.
func (s Supported) metadata(issuer string, algs []string) Metadata {
	subjects := s.SubjectTypes
	if len(subjects) == 0 {
		subjects = []string{"public"}
	}
	auth := nonNil(s.TokenEndpointAuthMethods)
	token := auth
	if s.PublicClients && !slices.Contains(token, oauth2.AuthMethodNone) {
		token = append(slices.Clone(auth), oauth2.AuthMethodNone)
	}
	introspect := slices.DeleteFunc(slices.Clone(auth), func(m string) bool { return m == oauth2.AuthMethodNone })
	responses := s.ResponseTypes
	if len(responses) == 0 {
		responses = []string{"id_token"}
		if s.AuthorizationEndpoint {
			responses = []string{"code"}
		}
	}
	var modes []string
	if s.AuthorizationEndpoint {
		modes = []string{"query"}
	}
	var authAlgs []string
	if slices.Contains(auth, oauth2.AuthMethodPrivateKeyJWT) {
		authAlgs = s.TokenEndpointAuthSigningAlgs
	}
	m := Metadata{
		Issuer:                issuer,
		JWKSURI:               issuer + PathJWKS,
		TokenEndpoint:         issuer + PathToken,
		IntrospectionEndpoint: issuer + PathIntrospect,
		RevocationEndpoint:    issuer + PathRevoke,

		GrantTypesSupported:    nonNil(s.GrantTypes),
		ResponseTypesSupported: responses,
		ResponseModesSupported: modes,
		SubjectTypesSupported:  subjects,
		ScopesSupported:        nonNil(s.Scopes),
		ClaimsSupported:        nonNil(s.Claims),

		TokenEndpointAuthMethodsSupported:                  token,
		TokenEndpointAuthSigningAlgValuesSupported:         s.TokenEndpointAuthSigningAlgs,
		IntrospectionEndpointAuthMethodsSupported:          introspect,
		IntrospectionEndpointAuthSigningAlgValuesSupported: authAlgs,
		RevocationEndpointAuthMethodsSupported:             token,
		RevocationEndpointAuthSigningAlgValuesSupported:    authAlgs,

		IDTokenSigningAlgValuesSupported: nonNil(algs),
	}
	if s.AuthorizationEndpoint {
		m.AuthorizationEndpoint = issuer + PathAuthorize
		m.EndSessionEndpoint = issuer + PathEndSession
		m.UserInfoEndpoint = issuer + PathUserInfo
		m.CodeChallengeMethodsSupported = []string{"S256"}
		m.AuthorizationResponseIssParameterSupported = true
		m.RequestURIParameterSupported = new(bool)
	}
	return m
}
