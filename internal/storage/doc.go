// Package storage defines the records sts persists and the contract every
// backend must meet: small per-aggregate interfaces, the sentinels
// [ErrNotFound] and [ErrAlreadyExists], updater-function updates and garbage
// collection. It imports nothing from this module; backends live in
// subpackages (sqlstore) and prove themselves against the conformance suite.
package storage
