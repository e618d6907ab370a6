// Package cli is the command layer: the cobra commands, their flags and
// the loading of the configuration. `sts serve` hands the loaded
// configuration to internal/app, which assembles and runs the server; the
// other commands call the admin API or, in bootstrap and break-glass mode,
// open storage through app's helpers and use the lifecycle services the
// admin API uses. Nothing imports cli but cmd/sts.
package cli
