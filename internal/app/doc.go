// Package app is the composition root of `sts serve`: New turns a loaded,
// valid config.Config into the storage backend, every service (signer,
// tokens, grants, the Connect API, introspection, revocation, discovery,
// the host-token vault, rate limits, the record cache, the trust registry,
// the audit writer) and the HTTP server; Run brings storage and the master
// key up (the start-up state machine that keeps serving, not ready, while
// PostgreSQL is down), listens and serves until its context ends, then
// shuts down. It and the commands are the only packages that import config
// and storage/sqlstore; nothing imports app but cli, cmd/sts and the test
// kit (internal/ststest). See docs/architecture.md.
package app
