// Package rs is the small public library a resource server uses to accept
// sts access tokens: Verifier checks a token (RFC 9068 at+jwt, keys from the
// issuer's JWKS with a bounded cache) and Allowed answers whether it may use
// a permission on a resource, honouring the Credential Access Boundary the
// token carries in its cab claim (Google STS downscoping).
//
// It is public so other modules can import it, and so it depends on nothing
// under internal/: only go-jose and cel-go.
package rs
