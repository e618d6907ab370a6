package signer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type clock = clocktest.Clock

func newKeyring(t testing.TB, keys ...[]byte) *seal.Keyring {
	t.Helper()
	kr, err := seal.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func masterKey() []byte {
	k := make([]byte, seal.KeySize)
	rand.Read(k)
	return k
}

func newManager(t testing.TB, store storage.KeyStore, kr *seal.Keyring, clk *clock, cfg signer.Config) *signer.Manager {
	t.Helper()
	m, err := signer.New(store, kr, cfg)
	if err != nil {
		t.Fatalf("signer.New: %v", err)
	}
	m.Now = clk.Now
	m.Logger = slog.New(slog.DiscardHandler)
	return m
}

func keysByState(t *testing.T, store storage.KeyStore) map[storage.KeyState][]storage.SigningKey {
	t.Helper()
	rows, err := store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[storage.KeyState][]storage.SigningKey{}
	for _, r := range rows {
		out[r.State] = append(out[r.State], r)
	}
	return out
}

func TestInitFreshSet(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		for _, alg := range []string{signer.ES256, signer.RS256, signer.EdDSA} {
			t.Run(alg, func(t *testing.T) {
				store.UpdateSigningKeys(t.Context(), func([]storage.SigningKey) ([]storage.SigningKey, error) { return nil, nil })
				clk := clocktest.New(t0)
				kr := newKeyring(t, masterKey())
				m := newManager(t, store, kr, clk, signer.Config{Algorithm: alg})
				if err := m.Init(t.Context()); err != nil {
					t.Fatalf("Init: %v", err)
				}
				got := keysByState(t, store)
				if len(got[storage.KeyActive]) != 1 || len(got[storage.KeyNext]) != 1 || len(got[storage.KeyRetired]) != 0 {
					t.Fatalf("fresh set = %v, want one active and one next key", got)
				}
				active := got[storage.KeyActive][0]
				if active.ID != m.ActiveKeyID() || !active.ActivatedAt.Equal(t0) || active.Algorithm != alg {
					t.Errorf("active = %+v, want kid %s activated at t0 with %s", active, m.ActiveKeyID(), alg)
				}
				for _, k := range append(got[storage.KeyActive], got[storage.KeyNext]...) {
					// The private key at rest is ciphertext under the master key.
					if _, err := x509.ParsePKCS8PrivateKey(k.Sealed); err == nil {
						t.Errorf("key %s: Sealed parses as a plaintext PKCS#8 key", k.ID)
					}
					if k.MasterKeyID != kr.PrimaryID() {
						t.Errorf("key %s: MasterKeyID = %q, want %q", k.ID, k.MasterKeyID, kr.PrimaryID())
					}
					if bytes.Contains(k.PublicJWK, []byte(`"d"`)) {
						t.Errorf("key %s: public JWK has a private parameter: %s", k.ID, k.PublicJWK)
					}
				}
				// A restart (a new manager over the same store) keeps the keys.
				m2 := newManager(t, store, kr, clk, signer.Config{Algorithm: alg})
				if err := m2.Init(t.Context()); err != nil {
					t.Fatalf("Init after restart: %v", err)
				}
				if m2.ActiveKeyID() != m.ActiveKeyID() {
					t.Errorf("after restart active = %s, want %s", m2.ActiveKeyID(), m.ActiveKeyID())
				}
				if again := keysByState(t, store); len(again[storage.KeyActive])+len(again[storage.KeyNext]) != 2 {
					t.Errorf("restart changed the set: %v", again)
				}
			})
		}
	})
}

func TestRotationLifecycle(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		clk := clocktest.New(t0)
		cfg := signer.DefaultConfig()
		m := newManager(t, store, newKeyring(t, masterKey()), clk, cfg)
		ctx := t.Context()
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		a, b := keysByState(t, store)[storage.KeyActive][0].ID, keysByState(t, store)[storage.KeyNext][0].ID

		// On demand, too early: b has been published for one minute only.
		clk.Set(t0.Add(time.Minute))
		if _, err := m.Rotate(ctx, clk.Now()); !errors.Is(err, signer.ErrNextNotReady) {
			t.Fatalf("Rotate one minute after publishing = %v, want ErrNextNotReady", err)
		}
		// The schedule is not due before 30 days.
		clk.Set(t0.Add(cfg.RotationPeriod - time.Second))
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if m.ActiveKeyID() != a {
			t.Fatalf("rotated before the period: active %s, want %s", m.ActiveKeyID(), a)
		}
		// Due: b becomes active, a retired, c published.
		rotatedAt := t0.Add(cfg.RotationPeriod)
		clk.Set(rotatedAt)
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		got := keysByState(t, store)
		if m.ActiveKeyID() != b || len(got[storage.KeyActive]) != 1 || got[storage.KeyActive][0].ID != b {
			t.Fatalf("after rotation active = %s (%v), want %s", m.ActiveKeyID(), got, b)
		}
		retired := got[storage.KeyRetired]
		retain := cfg.MaxTokenLifetime + cfg.Leeway + cfg.PollInterval
		if len(retired) != 1 || retired[0].ID != a || !retired[0].RetiredAt.Equal(rotatedAt) || !retired[0].DeleteAfter.Equal(rotatedAt.Add(retain)) {
			t.Fatalf("retired = %+v, want %s retired at %v until %v", retired, a, rotatedAt, rotatedAt.Add(retain))
		}
		if retired[0].Sealed != nil {
			t.Errorf("retired key %s still holds its sealed private key", a)
		}
		c := got[storage.KeyNext][0].ID
		for _, kid := range []string{a, b, c} {
			if _, ok := m.PublicKey(kid); !ok {
				t.Errorf("PublicKey(%s) missing after rotation", kid)
			}
		}
		// The retired key stays published until DeleteAfter, then goes.
		clk.Set(rotatedAt.Add(retain - time.Second))
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.PublicKey(a); !ok {
			t.Errorf("retired key %s dropped before DeleteAfter", a)
		}
		clk.Set(rotatedAt.Add(retain))
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.PublicKey(a); ok {
			t.Errorf("retired key %s still published at DeleteAfter", a)
		}
		if got := keysByState(t, store); len(got[storage.KeyRetired]) != 0 || len(got[storage.KeyActive]) != 1 || len(got[storage.KeyNext]) != 1 {
			t.Errorf("after deletion set = %v", got)
		}
		// On demand once the next key is published long enough.
		clk.Set(rotatedAt.Add(retain + time.Hour))
		r, err := m.Rotate(ctx, clk.Now())
		if err != nil || !r.Rotated || r.Activated != c || r.Retired != b {
			t.Fatalf("Rotate = %+v, %v; want %s activated, %s retired", r, err, c, b)
		}
		// ForceRotate skips the publish-ahead check (compromised key).
		r, err = m.ForceRotate(ctx, clk.Now())
		if err != nil || !r.Rotated || r.Retired != c {
			t.Fatalf("ForceRotate = %+v, %v; want %s retired", r, err, c)
		}
	})
}

// TestConcurrentRotation proves exactly one rotation wins when several
// replicas (managers over one store) rotate at once, with real goroutines
// (docs/security.md D-05; dex testKeysConcurrentUpdate).
func TestConcurrentRotation(t *testing.T) {
	t.Parallel()
	const replicas = 8
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk := clocktest.New(t0)
		kr := newKeyring(t, masterKey())
		ms := make([]*signer.Manager, replicas)
		for i := range ms {
			ms[i] = newManager(t, store, kr, clk, signer.Config{})
		}
		// All replicas start on an empty set at once: one bootstrap wins.
		run := func(f func(m *signer.Manager) (signer.Rotation, error)) []signer.Rotation {
			var wg sync.WaitGroup
			res := make([]signer.Rotation, replicas)
			errs := make([]error, replicas)
			start := make(chan struct{})
			for i, m := range ms {
				wg.Go(func() {
					<-start
					res[i], errs[i] = f(m)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			return res
		}
		run(func(m *signer.Manager) (signer.Rotation, error) { return signer.Rotation{}, m.Init(ctx) })
		got := keysByState(t, store)
		if len(got[storage.KeyActive]) != 1 || len(got[storage.KeyNext]) != 1 {
			t.Fatalf("after concurrent Init: %v, want one active, one next", got)
		}
		for i, m := range ms {
			if m.ActiveKeyID() != got[storage.KeyActive][0].ID {
				t.Errorf("replica %d signs with %s, want %s", i, m.ActiveKeyID(), got[storage.KeyActive][0].ID)
			}
		}

		clk.Set(t0.Add(2 * time.Hour))
		res := run(func(m *signer.Manager) (signer.Rotation, error) { return m.Rotate(ctx, clk.Now()) })
		rotated, already := 0, 0
		for _, r := range res {
			if r.Rotated {
				rotated++
			}
			if r.AlreadyRotated {
				already++
			}
		}
		if rotated != 1 || already != replicas-1 {
			t.Errorf("concurrent Rotate: %d rotated, %d already rotated; want 1 and %d", rotated, already, replicas-1)
		}
		got = keysByState(t, store)
		if len(got[storage.KeyActive]) != 1 || len(got[storage.KeyNext]) != 1 || len(got[storage.KeyRetired]) != 1 {
			t.Errorf("after concurrent Rotate: %v, want one key in each state", got)
		}

		// Scheduled rotation from every replica's poll at once: one wins.
		clk.Set(t0.Add(2*time.Hour + signer.DefaultConfig().RotationPeriod))
		run(func(m *signer.Manager) (signer.Rotation, error) { return signer.Rotation{}, m.Tick(ctx) })
		got2 := keysByState(t, store)
		if len(got2[storage.KeyActive]) != 1 || got2[storage.KeyActive][0].ID != got[storage.KeyNext][0].ID || len(got2[storage.KeyNext]) != 1 {
			t.Errorf("after concurrent Tick: %v, want %s active and one next key", got2, got[storage.KeyNext][0].ID)
		}
		for i, m := range ms {
			if m.ActiveKeyID() != got2[storage.KeyActive][0].ID {
				t.Errorf("replica %d did not converge: signs with %s", i, m.ActiveKeyID())
			}
		}
	})
}

// TestSealed: with a wrong or missing master key the manager reports
// sealed, still publishes the public keys, and never generates keys over
// the existing set (docs/security.md D-06).
func TestSealed(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk := clocktest.New(t0)
		good := newManager(t, store, newKeyring(t, masterKey()), clk, signer.Config{})
		if err := good.Init(ctx); err != nil {
			t.Fatal(err)
		}
		before, _ := store.ListSigningKeys(ctx)
		for name, kr := range map[string]*seal.Keyring{"wrong master key": newKeyring(t, masterKey()), "no master key": nil} {
			t.Run(name, func(t *testing.T) {
				m := newManager(t, store, kr, clk, signer.Config{})
				if err := m.Init(ctx); !errors.Is(err, signer.ErrSealed) {
					t.Fatalf("Init = %v, want ErrSealed", err)
				}
				if err := m.Ready(); !errors.Is(err, signer.ErrSealed) {
					t.Errorf("Ready = %v, want ErrSealed", err)
				}
				if _, err := m.Sign(ctx, "at+jwt", []byte(`{}`)); !errors.Is(err, signer.ErrSealed) {
					t.Errorf("Sign = %v, want ErrSealed", err)
				}
				if _, ok := m.PublicKey(good.ActiveKeyID()); !ok {
					t.Errorf("sealed manager does not publish the active public key")
				}
				clk.Set(t0.Add(90 * 24 * time.Hour)) // long overdue
				if err := m.Tick(ctx); !errors.Is(err, signer.ErrSealed) {
					t.Errorf("Tick = %v, want ErrSealed", err)
				}
				if _, err := m.ForceRotate(ctx, clk.Now()); !errors.Is(err, signer.ErrSealed) {
					t.Errorf("ForceRotate = %v, want ErrSealed", err)
				}
				after, _ := store.ListSigningKeys(ctx)
				if len(after) != len(before) || after[0].ID != before[0].ID || after[1].ID != before[1].ID {
					t.Errorf("a sealed manager changed the key set")
				}
				clk.Set(t0)
			})
		}
	})
}

// TestSealedRowsAreBoundToTheirKid swaps the ciphertexts of two rows: the
// AAD ("signing_key:<kid>") makes neither open.
func TestSealedRowsAreBoundToTheirKid(t *testing.T) {
	t.Parallel()
	store := newSQLiteStore(t)
	ctx := t.Context()
	clk := clocktest.New(t0)
	kr := newKeyring(t, masterKey())
	if err := newManager(t, store, kr, clk, signer.Config{}).Init(ctx); err != nil {
		t.Fatal(err)
	}
	err := store.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		old[0].Sealed, old[1].Sealed = old[1].Sealed, old[0].Sealed
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := newManager(t, store, kr, clk, signer.Config{}).Init(ctx); !errors.Is(err, signer.ErrSealed) {
		t.Errorf("Init with swapped ciphertexts = %v, want ErrSealed", err)
	}
}

// TestTamperedPublicKeyRefused: a stored JWK that is not the public key
// of its kid (or carries private parameters) is refused, never published.
func TestTamperedPublicKeyRefused(t *testing.T) {
	t.Parallel()
	store := newSQLiteStore(t)
	ctx := t.Context()
	clk := clocktest.New(t0)
	kr := newKeyring(t, masterKey())
	if err := newManager(t, store, kr, clk, signer.Config{}).Init(ctx); err != nil {
		t.Fatal(err)
	}
	err := store.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		old[1].PublicJWK = old[0].PublicJWK // next claims the active key's JWK
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, store, kr, clk, signer.Config{})
	if err := m.Init(ctx); err == nil {
		t.Fatal("Init accepted a row whose JWK is another key's")
	}
	if _, err := m.JWKS(); err == nil {
		t.Error("JWKS served from a refused set")
	}
}

func TestRotateMaster(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk := clocktest.New(t0)
		oldKey, newKey := masterKey(), masterKey()
		m := newManager(t, store, newKeyring(t, oldKey), clk, signer.Config{})
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		// Retire one key so the set holds a row without a private half.
		clk.Set(t0.Add(2 * time.Hour))
		if _, err := m.Rotate(ctx, clk.Now()); err != nil {
			t.Fatal(err)
		}
		both := newKeyring(t, newKey, oldKey)
		n, err := m.RotateMaster(ctx, both)
		if err != nil || n != 2 {
			t.Fatalf("RotateMaster = %d, %v; want 2 rows re-wrapped", n, err)
		}
		if _, err := m.Sign(ctx, "at+jwt", []byte(`{}`)); err != nil {
			t.Errorf("Sign after RotateMaster: %v", err)
		}
		if n, err := signer.ResealKeys(ctx, store, both); err != nil || n != 0 {
			t.Errorf("second ResealKeys = %d, %v; want 0, nil", n, err)
		}
		for _, r := range keysByState(t, store)[storage.KeyActive] {
			if r.MasterKeyID != seal.KeyID(newKey) {
				t.Errorf("key %s still under %s", r.ID, r.MasterKeyID)
			}
		}
		// The new key alone opens the set; the old one alone no longer does.
		if err := newManager(t, store, newKeyring(t, newKey), clk, signer.Config{}).Init(ctx); err != nil {
			t.Errorf("Init with only the new master key: %v", err)
		}
		if err := newManager(t, store, newKeyring(t, oldKey), clk, signer.Config{}).Init(ctx); !errors.Is(err, signer.ErrSealed) {
			t.Errorf("Init with only the old master key = %v, want ErrSealed", err)
		}
	})
}

func TestListKeys(t *testing.T) {
	t.Parallel()
	store := newSQLiteStore(t)
	clk := clocktest.New(t0)
	m := newManager(t, store, newKeyring(t, masterKey()), clk, signer.Config{})
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, err := m.Keys(t.Context())
	if err != nil || len(keys) != 2 {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	for _, k := range keys {
		switch k.State {
		case storage.KeyActive:
			if !k.RotatesAt.Equal(t0.Add(30 * 24 * time.Hour)) {
				t.Errorf("active RotatesAt = %v", k.RotatesAt)
			}
		case storage.KeyNext:
			if !k.SignsFrom.Equal(t0.Add(time.Hour)) {
				t.Errorf("next SignsFrom = %v", k.SignsFrom)
			}
		}
	}
	// KeyInfo carries no key material.
	b, _ := json.Marshal(keys)
	if bytes.Contains(b, []byte("Sealed")) || bytes.Contains(b, []byte("PublicJWK")) {
		t.Errorf("KeyInfo JSON has key material: %s", b)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := []signer.Config{
		{Algorithm: "HS256"},
		{Algorithm: "none"},
		{Algorithm: signer.RS256, RSABits: 1024},
		{RotationPeriod: time.Hour, PublishAhead: 2 * time.Hour},
		{PollInterval: 2 * time.Hour},
		{CheckInterval: 2 * time.Minute},
		{CheckInterval: -time.Second},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil, want error", c)
		}
	}
	if err := signer.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

// TestRun: the loop rotates when the stored schedule says so and returns
// when its context ends.
func TestRun(t *testing.T) {
	t.Parallel()
	store := newSQLiteStore(t)
	clk := clocktest.New(t0)
	cfg := signer.Config{PollInterval: 10 * time.Millisecond}
	m := newManager(t, store, newKeyring(t, masterKey()), clk, cfg)
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := m.ActiveKeyID()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	clk.Set(t0.Add(signer.DefaultConfig().RotationPeriod))
	deadline := time.Now().Add(10 * time.Second)
	for m.ActiveKeyID() == first && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if m.ActiveKeyID() == first {
		t.Error("Run did not rotate a key past its rotation period")
	}
}
