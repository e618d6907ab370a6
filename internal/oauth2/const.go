package oauth2

// Grant types (the grant_type parameter).
const (
	// GrantTypeClientCredentials is RFC 6749 §4.4.2.
	GrantTypeClientCredentials = "client_credentials"
	// GrantTypeAuthorizationCode is RFC 6749 §4.1.3.
	GrantTypeAuthorizationCode = "authorization_code"
	// GrantTypeRefreshToken is RFC 6749 §6.
	GrantTypeRefreshToken = "refresh_token"
	// GrantTypeTokenExchange is RFC 8693 §2.1.
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// GrantTypeJWTBearer is RFC 7523 §2.1.
	GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// ScopeOfflineAccess is the scope that asks for a refresh token (OIDC
// Core §11).
const ScopeOfflineAccess = "offline_access"

// GoogleDefaultScope is what Google's client libraries ask for when their
// user sets no scopes; at /v1/token it stands for the pool's default.
const GoogleDefaultScope = "https://www.googleapis.com/auth/cloud-platform"

// Token type identifiers (subject_token_type, actor_token_type,
// requested_token_type, issued_token_type), RFC 8693 §3.
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
	// TokenTypePAT names one of our personal access tokens as a
	// subject_token (RFC 8693 §3 allows other URIs): exchanging it keeps the
	// long-lived secret away from resource servers.
	TokenTypePAT   = "urn:opensts:params:oauth:token-type:personal_access_token"
	TokenTypeSAML1 = "urn:ietf:params:oauth:token-type:saml1"
	TokenTypeSAML2 = "urn:ietf:params:oauth:token-type:saml2"
)

// TokenTypeBearer is the token_type of a bearer access token in a token
// response (RFC 6749 §7.1, RFC 6750 §6.1.1).
const TokenTypeBearer = "Bearer"

// ClientAssertionTypeJWTBearer is the client_assertion_type of RFC 7523 §2.2
// (private_key_jwt client authentication).
const ClientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Client authentication methods (token_endpoint_auth_methods_supported,
// RFC 8414 §2 and OIDC Core §9).
const (
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
	AuthMethodPrivateKeyJWT     = "private_key_jwt"
	AuthMethodNone              = "none"
)

// JOSE "typ" header values of the tokens we issue.
const (
	// JWTTypeAccessToken is RFC 9068 §2.1: access tokens MUST carry
	// typ "at+jwt".
	JWTTypeAccessToken = "at+jwt"
	// JWTTypeJWT is the typ of ID tokens (RFC 7519 §5.1).
	JWTTypeJWT = "JWT"
)

// Error codes (the error response parameter).
const (
	// RFC 6749 §5.2.
	ErrorInvalidRequest       = "invalid_request"
	ErrorInvalidClient        = "invalid_client"
	ErrorInvalidGrant         = "invalid_grant"
	ErrorUnauthorizedClient   = "unauthorized_client"
	ErrorUnsupportedGrantType = "unsupported_grant_type"
	ErrorInvalidScope         = "invalid_scope"
	// RFC 8693 §2.2.2.
	ErrorInvalidTarget = "invalid_target"
	// RFC 6750 §3.1.
	ErrorInvalidToken      = "invalid_token"
	ErrorInsufficientScope = "insufficient_scope"
	// RFC 7009 §2.2.1.
	ErrorUnsupportedTokenType = "unsupported_token_type"
	// RFC 6749 §4.1.2.1, used by token endpoints for internal failures.
	ErrorServerError            = "server_error"
	ErrorTemporarilyUnavailable = "temporarily_unavailable"
)
