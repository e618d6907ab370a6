// Package authorize serves GET and POST /oauth2/authorize, the OAuth 2.0
// authorization endpoint of the authorization_code grant (RFC 6749 §4.1)
// with PKCE S256 (RFC 7636) and OpenID Connect's nonce. A POST is either
// the request sent as a form (OIDC Core §3.1.2.1), sent on to the GET,
// or the consent screen's decision (authorize.go, post).
//
// It is an L3 endpoint (docs/architecture.md): it knows nothing of how a
// person signs in. The [SignedIn] seam answers "who is this browser?" and
// sends a browser that is nobody to sign in and back; internal/web
// implements it, and may tell when its person signed in ([SignedInAt]),
// which prompt=login, max_age and the ID token's auth_time need
// (reauth.go). The code it issues is redeemed by the authorization_code
// grant of internal/grants; the two share only storage.AuthCode and the
// digest pepper.
//
// Order of checks (docs/security.md T-73, T-92): client_id and redirect_uri
// are judged first, and a failure there is an error page, never a redirect,
// so the endpoint cannot be used as an open redirector. Every later
// failure is sent back to the registered redirect URI with error and state
// (RFC 6749 §4.1.2.1).
package authorize
