package signer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// srcKIDClaims are the claims of a token exchanged from one signed by kid,
// issued at iat.
func srcKIDClaims(kid string, iat time.Time) *tokens.AccessClaims {
	return &tokens.AccessClaims{Subject: "s", IssuedAt: tokens.NewNumericDate(iat),
		SourceJTIs: []string{"j"}, SourceKeyIDs: []string{kid}}
}

// T-192: a replica that started after a key was revoked never loaded it.
// A token exchanged from one of that key, issued before the replica read
// its key set, is gone on every check: the key signed before the token
// was issued, so a read since would have seen it. It was answered gone
// once, then "unavailable" (503) within LookupInterval of each re-read.
func TestSourceKeyRevokedBeforeReplicaStarted(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk := clocktest.New(t0)
		kr := newKeyring(t, masterKey())
		a := newManager(t, store, kr, clk, signer.DefaultConfig())
		if err := a.Init(ctx); err != nil {
			t.Fatal(err)
		}
		bad := a.ActiveKeyID()
		if _, err := a.RevokeKey(ctx, bad, func(r signer.Revocation) storage.AuditEvent {
			return r.AuditEvent("principal:admin", "req-1", clk.Now())
		}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * tokens.DefaultLeeway)
		fresh := newManager(t, store, kr, clk, signer.DefaultConfig())
		if err := fresh.Init(ctx); err != nil {
			t.Fatal(err)
		}
		src := &tokens.StoreSources{Store: store, Keys: fresh}
		for try := range 3 {
			if err := src.CheckSource(ctx, srcKIDClaims(bad, t0)); !errors.Is(err, tokens.ErrSourceGone) {
				t.Errorf("try %d: %v, want source gone", try, err)
			}
		}
	})
}

// T-192, F-45: a key another replica made after this one last read its
// set is found by a re-read, never told gone, even for a token whose iat
// (on the clock of the replica that minted it) is up to the verifier's
// leeway before that read.
func TestSourceKeyMadeAfterReplicaRead(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		_, a, b := pair(t, store, store)
		made := rotateToUnseenKey(t, a)
		if _, ok := b.PublicKey(made); ok {
			t.Fatalf("setup: b already knows %s", made)
		}
		src := &tokens.StoreSources{Store: store, Keys: b}
		skewed := t0.Add(-tokens.DefaultLeeway / 2)
		if err := src.CheckSource(t.Context(), srcKIDClaims(made, skewed)); err != nil {
			t.Errorf("key %s made after this replica read its set: %v, want it found", made, err)
		}
	})
}

// A kid this replica cannot yet tell (no re-read within LookupInterval)
// is "unavailable", said once: the message named it twice.
func TestSourceKeyUnavailableSaysSoOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk := clocktest.New(t0)
		m := newManager(t, store, newKeyring(t, masterKey()), clk, signer.DefaultConfig())
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		src := &tokens.StoreSources{Store: store, Keys: m}
		if err := src.CheckSource(ctx, srcKIDClaims("unknown-kid", t0)); !errors.Is(err, tokens.ErrSourceGone) {
			t.Fatalf("first check (re-read): %v, want source gone", err)
		}
		err := src.CheckSource(ctx, srcKIDClaims("unknown-kid-2", t0))
		if !errors.Is(err, tokens.ErrSourceUnavailable) || !errors.Is(err, signer.ErrKeysUnavailable) {
			t.Fatalf("second check within LookupInterval: %v, want unavailable", err)
		}
		if n := strings.Count(err.Error(), "token source check unavailable"); n != 1 {
			t.Errorf("error %q says unavailable %d times, want once", err, n)
		}
	})
}
