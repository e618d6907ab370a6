// Package pepper keeps the server-wide pepper under which sts computes the
// HMAC-SHA256 digests of the bearer secrets it hands out (PATs, exchange
// and refresh tokens, client secrets). The pepper is random, created once
// by whichever replica starts first, and stored sealed under the master
// key, so rotating the master key re-wraps it instead of invalidating every
// digest. It depends only on storage and seal.
package pepper
