// Package introspect serves RFC 7662 token introspection at POST
// /oauth2/introspect and Google's POST /v1/introspect for every token sts
// issues (access JWTs, refresh tokens, personal access tokens). The caller
// must authenticate; an inactive token is exactly {"active":false}, and a
// storage failure is 503, never a guess (docs/security.md T-61, T-62, F-18). It
// depends on clientauth, tokens, secret and storage, never on grants or
// revoke.
package introspect
