// Package loadgen is the load benchmark behind `sts bench`: it mints
// distinct RS256 subject tokens from a key whose JWKS the target pool
// trusts, drives RFC 8693 exchanges over C connections for a fixed time,
// reports throughput, latency percentiles and the server's CPU per request,
// and serves a bare verify-one-sign-one handler to compare against. The
// same generator drives RFC 7662 introspection of our access tokens and the
// client_credentials grant, against bare verify-only and sign-only
// handlers.
//
// It depends on go-jose and the standard library only; nothing in it runs
// inside `sts serve`.
package loadgen
