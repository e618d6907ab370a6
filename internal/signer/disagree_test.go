package signer_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/ststest/logbuf"
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
			t.Parallel()
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

// TestDisagreementLoggedOnce (docs/security.md F-100): a replica that
// finds live keys of an algorithm it does not keep (another replica keeps
// RS256, this one not) says so once, at its start, naming the algorithm,
// and not again at each poll while the set is unchanged.
func TestDisagreementLoggedOnce(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s1, s2 := sharedStores(t, kind)
			kr := newKeyring(t, masterKey())
			_ = polledReplica(t, s1, kr, signer.RS256)
			b, err := signer.NewMulti(s2, kr, signer.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var logs logbuf.Buffer
			b.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
			if err := b.Init(t.Context()); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := b.Tick(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			const msg = "another replica keeps signing keys"
			if n := strings.Count(logs.String(), msg); n != 1 || !strings.Contains(logs.String(), "algorithms=[RS256]") {
				t.Errorf("%q logged %d times over a start and 3 polls, want once naming RS256:\n%s", msg, n, logs.String())
			}
		})
	}
}
