// Package server is the HTTP composition root: one ServeMux with Go 1.22
// patterns, the middleware every response passes through (request ID, panic
// recovery, body limit, access log, metrics), the ops endpoints /livez,
// /readyz and /metrics, the garbage-collection loop and graceful shutdown.
// Endpoint packages plug in through [Mounter]. It receives a storage.Store
// and plain values; it never reads config or opens a backend.
package server
