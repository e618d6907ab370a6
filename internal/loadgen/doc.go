// Package loadgen is the load benchmark behind `sts bench`: it mints
// distinct RS256 subject tokens from a key whose JWKS the target pool
// trusts, drives RFC 8693 exchanges over C connections for a fixed time,
// reports throughput, latency percentiles and the server's CPU per request,
// and serves a bare verify-one-sign-one handler to compare against. The
// same generator drives RFC 7662 introspection of our access tokens and the
// client_credentials grant, against bare verify-only and sign-only
// handlers.
//
// The bare handlers are the floor of docs/performance.md and use the
// standard library only (stdjwt.go); go-jose mints the generator's subject
// tokens and judges the floor in tests. Nothing in it runs inside
// `sts serve`.
package loadgen
