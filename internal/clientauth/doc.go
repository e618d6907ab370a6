// Package clientauth authenticates OAuth clients for the token,
// introspection and revocation endpoints: client_secret_basic and
// client_secret_post (RFC 6749 §2.3.1; HMAC digests compared in constant
// time) and private_key_jwt (RFC 7523 §2.2 and §3, single-use jti), and
// holds the per-client permission checks. It depends on storage, oauth2 and
// secret only; the restricted HTTP client for JWKS URIs is handed in.
package clientauth
