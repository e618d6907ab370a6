// Package cli is the wiring layer: the cobra commands (serve, migrate,
// version), the turning of config.Config into constructor arguments, opening
// the storage backend, resolving the master key and the start-up state
// machine that keeps serving while PostgreSQL is down. It is the only
// package that imports config and storage/sqlstore; nothing imports cli but
// cmd/sts and the test kit.
package cli
