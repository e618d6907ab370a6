// Package federation verifies subject tokens from trusted external issuers
// (a pool's providers) and turns them into an Identity: bounded parsing of
// compact JWS before any decoding, a per-provider algorithm allowlist, keys
// from an uploaded JWKS, a jwks_uri or OIDC discovery, and exact iss/aud/time
// checks, each failure carrying a stable Reason.
//
// It depends on internal/storage (for storage.Provider), go-jose (JWK
// parsing) and x/sync/singleflight only; never on
// server, cli, config or a storage backend, and it keeps no package-level
// state: keys live in a Cache value owned by the caller.
//
// We do not use go-oidc's RemoteKeySet: it refetches the JWKS on every
// unknown kid or bad signature with no cooldown (an attacker-driven fetch
// storm, coreos/go-oidc#482 closed unmerged) and reads bodies with an
// unbounded io.ReadAll. Cache adds a per-issuer refetch cooldown with
// singleflight, a size and key cap, last-good retention with stale-if-error,
// and an HTTP client that refuses private and metadata addresses at dial time
// (octo-sts dial.go idea).
//
// A recorded exception to docs/design.md#hand-written-code ("do not hand-write JWS
// verify"): the token is parsed once, by our strict compact-JWS decoder
// (which must exist anyway for docs/security.md T-02–T-05 and T-23–T-27: dot
// counting before decoding, duplicate and case-variant names, depth), and
// its signature is then checked with the standard library's crypto/rsa,
// crypto/ecdsa and crypto/ed25519 primitives (internal/jws) instead of
// handing the raw token to go-jose for a second parse. That second parse
// was a third of the exchange hot path's overhead over a bare handler
// (docs/performance.md). No cryptography is written here: only the RFC 7518 §3
// mapping from alg to hash and signature encoding, with the key already
// bound to exactly one alg. internal/jws's tests check every supported
// algorithm against tokens signed by go-jose, including tampered,
// truncated and wrong-key cases, so any divergence from go-jose fails CI.
package federation
