package conformance

import (
	"context"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// testNULKeyNotFound: a lookup, update or deletion by a key holding a NUL
// character (U+0000), or bytes that are not UTF-8, finds nothing, on every
// backend. No stored key holds one; PostgreSQL
// refuses NUL in text outright, and that refusal answered as a storage
// failure (503 and a storage error counted) where SQLite answered not
// found, for IDs anyone may send, such as a client_id at the token
// endpoint (docs/security.md T-108).
func testNULKeyNotFound(t *testing.T, s storage.Store) {
	const key = "a\x00b"
	for _, c := range []struct {
		name string
		get  func(ctx context.Context) error
	}{
		{"GetOrganization", func(ctx context.Context) error { _, err := s.GetOrganization(ctx, key); return err }},
		{"GetPrincipal", func(ctx context.Context) error { _, err := s.GetPrincipal(ctx, key); return err }},
		{"GetPool", func(ctx context.Context) error { _, err := s.GetPool(ctx, key); return err }},
		{"GetClient", func(ctx context.Context) error { _, err := s.GetClient(ctx, key); return err }},
		{"GetUpstreamIdentity", func(ctx context.Context) error { _, err := s.GetUpstreamIdentity(ctx, key, key, key); return err }},
		{"GetProvider", func(ctx context.Context) error { _, err := s.GetProvider(ctx, key, key); return err }},
		{"GetPAT", func(ctx context.Context) error { _, err := s.GetPAT(ctx, key); return err }},
		{"GetPAT(not UTF-8)", func(ctx context.Context) error { _, err := s.GetPAT(ctx, "a\xffb"); return err }},
		{"UpdatePAT", func(ctx context.Context) error {
			return s.UpdatePAT(ctx, key, func(p storage.PAT) (storage.PAT, error) { return p, nil })
		}},
		{"DeletePAT", func(ctx context.Context) error { return s.DeletePAT(ctx, key) }},
		{"GetHostToken", func(ctx context.Context) error { _, err := s.GetHostToken(ctx, key); return err }},
		{"GetRunnerKey", func(ctx context.Context) error { _, err := s.GetRunnerKey(ctx, key); return err }},
		{"GetConsent", func(ctx context.Context) error { _, err := s.GetConsent(ctx, key, key); return err }},
		{"GetRefreshToken", func(ctx context.Context) error { _, err := s.GetRefreshToken(ctx, key); return err }},
		{"DeleteWebSession", func(ctx context.Context) error { return s.DeleteWebSession(ctx, key) }},
	} {
		wantErrIs(t, c.name+"(NUL)", c.get(t.Context()), storage.ErrNotFound)
	}
}
