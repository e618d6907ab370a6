// Package userinfo serves the OpenID Connect UserInfo endpoint (OIDC Core
// §5.3) at GET and POST /oauth2/userinfo: an access token we issued with
// the openid scope, to a person or service account of sts, presented as
// an RFC 6750 bearer token, gets that principal's claims, limited by the
// token's scopes (docs/api.md, "UserInfo"; docs/security.md T-98). It
// depends on tokens and storage, never on another endpoint or the wiring.
package userinfo
