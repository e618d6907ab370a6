// Package jws checks compact-JWS signatures with the standard library's
// crypto/rsa, crypto/ecdsa and crypto/ed25519, over a token that its caller
// has already decoded with its own strict parser (federation for external
// subject tokens, tokens for our access JWTs).
//
// A recorded exception to docs/design.md#hand-written-code ("do not hand-write JWS
// verify"), first made in federation and explained there: handing the raw
// token to go-jose meant a second parse of every token on the hot paths
// (a third of the exchange's overhead over a bare handler, and the largest
// avoidable share of introspection's; docs/performance.md). No cryptography is
// written here, only the RFC 7518 §3 mapping from alg to hash and
// signature encoding. jws_test.go checks every supported algorithm against
// go-jose-signed tokens, including tampered, truncated and wrong-key cases,
// so a divergence from go-jose fails CI.
//
// ES256Signer is the one signing path written here (the ES256 mint of
// our own tokens, docs/design.md#hand-written-code); sign_test.go has
// go-jose verify its tokens and compares its header with go-jose's.
//
// It imports nothing from this module.
package jws
