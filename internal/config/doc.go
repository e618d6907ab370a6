// Package config owns the operator-facing configuration of sts: the Config
// struct, its defaults, the layering defaults → YAML file → STS_* environment
// → flags (only those bound to a key with BindFlag), strict rejection of
// unknown keys and a Validate that reports every problem at once. Only cli imports it; every other package receives plain
// values, so config never depends on server, storage or any backend.
package config
