// Package ststest is a test-only kit for other packages' tests: ready-made
// fixtures such as a migrated storage.Store. It may import "testing" and
// must never be imported by the sts binary.
package ststest
