package signer_test

import (
	"testing"

	"github.com/opensts/sts/internal/signer"
)

// TestReplicasDisagreeOnExtraAlgorithms (docs/security.md F-100): two
// replicas on one database, one keeping RS256 beside ES256
// (keys.extra_algorithms [RS256]), the other not ([]). Every key poll the
// second retired the first's RS256 keys as an algorithm "no longer kept"
// and the first generated two new ones, for good: the JWKS grew by two
// RS256 keys a minute and the first replica's RS256 signer lost its
// active key each time. An algorithm no longer kept is retired at a
// replica's start, poll or revocation only once overdue for rotation
// (docs/configuration.md keys.extra_algorithms), so the set is stable:
// polls neither retire nor generate a key, and both replicas keep reading
// the stored set and stay ready.
func TestReplicasDisagreeOnExtraAlgorithms(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			s1, _, a, b := disagreeingReplicas(t, kind)
			keys := func() int {
				rows, err := s1.ListSigningKeys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return len(rows)
			}
			settled, rs := keys(), a.ActiveKeyIDs()[signer.RS256]
			for i := range 5 {
				for name, m := range map[string]*signer.Multi{"a": a, "b": b} {
					if err := m.Tick(ctx); err != nil {
						t.Errorf("poll %d: %s.Tick = %v, want nil", i, name, err)
					}
				}
			}
			if n := keys(); n != settled {
				t.Errorf("stored keys after 5 polls of both replicas = %d, want %d (no churn)", n, settled)
			}
			if got := a.ActiveKeyIDs()[signer.RS256]; got != rs || got == "" {
				t.Errorf("a's active RS256 key = %q after the polls, want %q unchanged", got, rs)
			}
			// Each still reads the stored set: a Reload that failed (b's
			// primary taking a's RS256 keys for its own: two active keys)
			// would leave b on a stale snapshot, blind to revocations.
			for name, m := range map[string]*signer.Multi{"a": a, "b": b} {
				if err := m.Reload(ctx); err != nil {
					t.Errorf("%s.Reload() = %v, want nil", name, err)
				}
				if err := m.Ready(); err != nil {
					t.Errorf("%s.Ready() = %v, want nil", name, err)
				}
			}
		})
	}
}
