//go:build !unix

package sqlstore

// atFileSizeLimit: no file size limit to check on this platform.
func atFileSizeLimit(string) error { return nil }
