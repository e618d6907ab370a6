// Package federation verifies subject tokens from trusted external issuers
// (a pool's providers) and turns them into an Identity: bounded parsing of
// compact JWS before any decoding, a per-provider algorithm allowlist, keys
// from an uploaded JWKS, a jwks_uri or OIDC discovery, and exact iss/aud/time
// checks, each failure carrying a stable Reason.
//
// It depends on internal/storage (for storage.Provider), go-jose (signature
// verification and JWK parsing) and x/sync/singleflight only; never on
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
package federation
