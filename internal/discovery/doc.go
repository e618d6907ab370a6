// Package discovery serves the public documents that make sts an OIDC
// issuer: the JWKS (RFC 7517) of our published signing keys, and the
// OpenID Provider / RFC 8414 authorization-server metadata describing
// exactly what this server supports. It reads keys through
// [signer.KeySet] and depends on no other endpoint package, storage or
// configuration; the lists it advertises are fields the server fills.
package discovery
