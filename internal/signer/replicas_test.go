package signer_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// replicaBound is the documented bound within which a replica stops
// signing with, and trusting, a key another replica revoked or rotated
// away from (docs/security.md F-66, docs/architecture.md "Keys and
// secrets"): one key-set check interval plus the reload it triggers.
const replicaBound = 2 * time.Second

// newReplica is the key set of one `sts serve` replica over store, as
// internal/app builds it: a Multi with the default configuration (a key
// poll of 1 minute) on the real clock, its loop running until the test
// ends.
func newReplica(t *testing.T, store storage.KeyStore, kr *seal.Keyring) *signer.Multi {
	t.Helper()
	m, err := signer.NewMulti(store, kr, signer.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.SetLogger(slog.New(slog.DiscardHandler))
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// waitUntil polls cond until it holds or 2 × replicaBound have passed
// (slack for a loaded machine), and returns how long it took; it fails
// the test when cond never held.
func waitUntil(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 2*replicaBound {
			t.Fatalf("%s: still not after %s (documented bound %s; the key poll is %s)",
				what, time.Since(start).Round(time.Millisecond), replicaBound, signer.DefaultConfig().PollInterval)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestRevokeSeenByOtherReplica (docs/security.md F-66): two replicas on
// one database. After a revocation through replica A, replica B kept
// signing new tokens with the revoked key, and answering them (and tokens
// forged with it) active, until its key poll a minute later, while A
// already refused them. B must stop signing with the key, and stop
// trusting it, within replicaBound; a token B signs afterwards is accepted
// by A. The same holds for a forced rotation through A: B signs with the
// new active key within the bound.
func TestRevokeSeenByOtherReplica(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s1, s2 := sharedStores(t, kind)
			kr := newKeyring(t, masterKey())
			a, b := newReplica(t, s1, kr), newReplica(t, s2, kr)
			clk := clocktest.New(time.Now())
			verifyA := &tokens.Verifier{Keys: a, Issuer: revokeIss, Now: clk.Now}
			verifyB := &tokens.Verifier{Keys: b, Issuer: revokeIss, Now: clk.Now}

			bad := a.ActiveKeyID()
			if b.ActiveKeyID() != bad {
				t.Fatalf("test setup: replicas sign with %s and %s", bad, b.ActiveKeyID())
			}
			forged := mintWith(t, b, clk)
			if _, err := a.RevokeKey(ctx, bad, nil); err != nil {
				t.Fatalf("RevokeKey(%s) on replica A: %v", bad, err)
			}
			took := waitUntil(t, "replica B signs with the key A revoked", func() bool {
				_, published := b.PublicKey(bad)
				return b.ActiveKeyID() != bad && !published
			})
			t.Logf("replica B dropped the revoked key after %s", took.Round(time.Millisecond))
			if b.ActiveKeyID() != a.ActiveKeyID() {
				t.Errorf("replica B signs with %s, replica A with %s", b.ActiveKeyID(), a.ActiveKeyID())
			}
			tok := mintWith(t, b, clk)
			if _, err := verifyA.VerifyAccessToken(ctx, tok, "api"); err != nil {
				t.Errorf("a token replica B signed after the bound, at replica A: %v", err)
			}
			if _, err := verifyB.VerifyAccessToken(ctx, forged, "api"); !errors.Is(err, tokens.ErrUnknownKey) {
				t.Errorf("a token of the revoked key at replica B after the bound = %v, want ErrUnknownKey", err)
			}
			if jwks, _ := b.JWKS(); strings.Contains(string(jwks), bad) {
				t.Error("replica B's JWKS still publishes the revoked key after the bound")
			}

			// A forced rotation (the answer to a key that must stop
			// signing at once) is followed within the same bound.
			old := a.ActiveKeyID()
			if _, err := a.RotateEach(ctx, true, nil); err != nil {
				t.Fatalf("forced rotation on replica A: %v", err)
			}
			if a.ActiveKeyID() == old {
				t.Fatal("test setup: the forced rotation changed nothing")
			}
			waitUntil(t, "replica B signs with the key A rotated away from", func() bool {
				return b.ActiveKeyID() == a.ActiveKeyID()
			})
		})
	}
}

// countingStore counts the reads of the key set and of its version.
type countingStore struct {
	storage.Store
	lists, versions atomic.Int64
}

func (s *countingStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	s.lists.Add(1)
	return s.Store.ListSigningKeys(ctx)
}

func (s *countingStore) SigningKeySetVersion(ctx context.Context) (int64, error) {
	s.versions.Add(1)
	return s.Store.(storage.KeySetVersioner).SigningKeySetVersion(ctx)
}

// TestKeysetCheckReadsKeysOnlyOnChange: between key polls, a check reads
// only the stored set's version (one small indexed read); the keys
// themselves are read again only when it changed (docs/security.md F-66).
func TestKeysetCheckReadsKeysOnlyOnChange(t *testing.T) {
	t.Parallel()
	store := &countingStore{Store: newSQLiteStore(t)}
	m := newManager(t, store, newKeyring(t, masterKey()), clocktest.New(t0), signer.Config{CheckInterval: 5 * time.Millisecond})
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	initReads := store.lists.Load()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	for store.versions.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	// The first poll and the first check read the keys; no other check.
	before := store.lists.Load()
	if n := before - initReads; n != 2 {
		t.Errorf("%d reads of the keys over %d checks of an unchanged set, want 2: the first poll's and the first check's", n, store.versions.Load())
	}
	if _, err := m.RotateNow(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	want := store.lists.Load() + 1 // RotateNow's own reads, then one check's
	for store.lists.Load() < want {
		time.Sleep(5 * time.Millisecond)
	}
	v := store.versions.Load()
	for store.versions.Load() < v+10 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n := store.lists.Load(); n != want {
		t.Errorf("reads of the keys after one change = %d (before it %d), want %d", n, before, want)
	}
}
