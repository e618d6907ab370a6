// Package ratelimit decides whether one more request may pass, with token
// buckets keyed by a string the caller composes ("ip:203.0.113.7",
// "client:ci", "pool:ci", "principal:<id>"), and writes the
// Confluent-style X-RateLimit-* and IETF RateLimit-* response headers.
//
// Memory is the in-process backend (golang.org/x/time/rate) with bounded
// memory. Redis shares the buckets between replicas through one Redis
// server (redis_rate's GCRA script) and falls back to a per-replica Memory
// while Redis is down or slow (docs/security.md F-15). The package depends on
// nothing in this module; metrics reach it as callbacks.
package ratelimit
