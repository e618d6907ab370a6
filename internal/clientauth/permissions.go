package clientauth

import (
	"slices"

	"github.com/opensts/sts/internal/storage"
)

// Per-client permissions (RFC 8693 §5: client authentication is what lets
// the STS limit which clients may exchange; Dex GHSA-7qjx-gp9h-65qj is the
// bug of a grant path that skipped the per-client check, docs/security.md T-09).
// Every list is an allowlist: empty allows nothing.

// AllowsGrant reports whether c may use grantType.
func AllowsGrant(c *storage.Client, grantType string) bool {
	return c != nil && !c.Disabled && slices.Contains(c.GrantTypes, grantType)
}

// AllowsPool reports whether c may exchange against pool.
func AllowsPool(c *storage.Client, pool string) bool {
	return c != nil && pool != "" && slices.Contains(c.Pools, pool)
}

// AllowsAudience reports whether c may obtain tokens for aud.
func AllowsAudience(c *storage.Client, aud string) bool {
	return c != nil && aud != "" && slices.Contains(c.Audiences, aud)
}

// AllowsScopes reports whether every requested scope is one c may obtain.
func AllowsScopes(c *storage.Client, scopes []string) bool {
	if c == nil {
		return false
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}
