// Package archtest enforces the dependency-direction rules of docs/architecture.md
// with `go list`, in the normal `go test ./...` run. It has no non-test code
// and nothing imports it.
package archtest
