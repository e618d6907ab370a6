// Package tokens mints and verifies the JWTs sts itself issues: RFC 9068
// access tokens (typ at+jwt) and OIDC ID tokens, with the claims of
// docs/design.md#tokens. Signing goes through a [signer.Signer] and verification looks
// keys up in a [signer.KeySet] by kid, so neither touches storage on the hot
// path; the revocation check and the source check (what a token derives
// from still stands: its principal, PAT, client, pool and provider) are
// small interfaces. A token is decoded once,
// by our strict parser, and its signature checked with internal/jws over the
// bytes received (the docs/design.md#hand-written-code exception recorded there); minting uses
// go-jose through the signer. It knows nothing about
// HTTP, grants or federation: endpoints build on it.
package tokens
