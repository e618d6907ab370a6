// Package ratelimit decides whether one more request may pass, with token
// buckets (golang.org/x/time/rate) keyed by a string the caller composes
// ("ip:203.0.113.7", "client:ci", "pool:ci"), and writes the Confluent-style
// X-RateLimit-* and IETF RateLimit-* response headers.
//
// Memory is the in-process backend with bounded memory; Limiter is the seam
// where a shared (Redis) backend plugs in for scale-out. The package
// depends on nothing in this module.
package ratelimit
