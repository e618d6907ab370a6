// Package conformance is the behavioural suite every storage.Store backend
// runs: CRUD and sentinels for each aggregate, updater semantics, time
// round-trips, garbage collection and real-goroutine races. Backends call
// [RunTests] and [RunConcurrencyTests] from their own _test.go files; the
// package imports "testing" and must never be imported by the sts binary.
package conformance
