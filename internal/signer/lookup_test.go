package signer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// countingKeys counts reads of the key set.
type countingKeys struct {
	storage.KeyStore
	lists atomic.Int64
}

func (c *countingKeys) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	c.lists.Add(1)
	return c.KeyStore.ListSigningKeys(ctx)
}

// TestLookupKeyAfterForcedRotationElsewhere: replica A rotates with force
// twice in a row, so it signs with a key created moments ago that replica
// B has not loaded (B polls once a minute; one forced rotation activates
// the already published next key, which B knows).
// B's verifier looks the kid up in storage and accepts A's token at once;
// made-up kids cost B at most one storage read per LookupInterval.
func TestLookupKeyAfterForcedRotationElsewhere(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		keysB := &countingKeys{KeyStore: store}
		clk, a, b := pair(t, store, keysB)
		if _, ok := b.PublicKey(rotateToUnseenKey(t, a)); ok {
			t.Fatal("test setup: replica B already knows the newly active key")
		}
		const iss = "https://sts.example"
		tok, _, err := (&tokens.Issuer{Signer: a, IssuerURL: iss, Now: clk.Now}).MintAccessToken(ctx, tokens.AccessClaims{
			Subject: "s", Audience: tokens.Audience{"api"}, Expiry: tokens.NewNumericDate(clk.Now().Add(10 * time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		before := keysB.lists.Load()
		v := &tokens.Verifier{Keys: b, Issuer: iss, Now: clk.Now}
		if _, err := v.VerifyAccessToken(ctx, tok, "api"); err != nil {
			t.Fatalf("replica B rejects replica A's token signed with the force-rotated key: %v", err)
		}
		if got := keysB.lists.Load() - before; got != 1 {
			t.Errorf("storage reads for the unknown kid = %d, want 1", got)
		}

		// A storm of made-up kids: no further read inside the interval.
		before = keysB.lists.Load()
		for range 50 {
			if _, ok := b.LookupKey(ctx, "made-up"); ok {
				t.Fatal("a made-up kid was found")
			}
		}
		if got := keysB.lists.Load() - before; got != 0 {
			t.Errorf("storage reads for 50 made-up kids inside %v = %d, want 0", signer.LookupInterval, got)
		}
		clk.Advance(signer.LookupInterval)
		b.LookupKey(ctx, "made-up")
		if got := keysB.lists.Load() - before; got != 1 {
			t.Errorf("storage reads once the interval passed = %d, want 1", got)
		}
	})
}

// TestUnknownKidWithinLookupInterval (docs/security.md F-45): replica A
// rotates with force twice and B learns the new key by a re-read; A does
// it again within LookupInterval, so B meets a second unknown kid while its
// re-reads are rate-limited. B cannot tell whether the kid is ours: that
// is unavailable, never an invalid token; once the interval has passed,
// B re-reads and accepts the token. (The fault harness found it:
// faulttest TestFaultsReplicas, introspection answered {"active":false}
// for valid tokens of another replica.)
func TestUnknownKidWithinLookupInterval(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		keysB := &countingKeys{KeyStore: store}
		clk, a, b := pair(t, store, keysB)
		mint := func() string { return newKeyToken(t, a, clk) }
		v := &tokens.Verifier{Keys: b, Issuer: "https://sts.example", Now: clk.Now}
		if _, err := v.VerifyAccessToken(ctx, mint(), "api"); err != nil {
			t.Fatalf("first unknown kid: %v", err)
		}
		clk.Advance(signer.LookupInterval / 5)
		tok := mint()
		before := keysB.lists.Load()
		_, err := v.VerifyAccessToken(ctx, tok, "api")
		if sts.ErrorCode(err) != sts.Unavailable {
			t.Fatalf("second unknown kid within the re-read interval = %v (code %v), want sts.Unavailable", err, sts.ErrorCode(err))
		}
		if got := keysB.lists.Load() - before; got != 0 {
			t.Errorf("storage reads inside the interval = %d, want 0", got)
		}
		clk.Advance(signer.LookupInterval)
		if _, err := v.VerifyAccessToken(ctx, tok, "api"); err != nil {
			t.Fatalf("after the interval: %v", err)
		}
	})
}

// TestUnknownKidWindowIsOneSecond (docs/security.md F-45): after another
// replica's forced rotation, the window in which B answers "unavailable"
// for a valid token of a key it has not loaded is at most one second: a
// kid met a second after the last re-read is re-read and accepted. Made-up
// kids still cost at most one storage read a second.
func TestUnknownKidWindowIsOneSecond(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		keysB := &countingKeys{KeyStore: store}
		clk, a, b := pair(t, store, keysB)
		v := &tokens.Verifier{Keys: b, Issuer: "https://sts.example", Now: clk.Now}
		before := keysB.lists.Load()
		for i := range 3 {
			if _, err := v.VerifyAccessToken(ctx, newKeyToken(t, a, clk), "api"); err != nil {
				t.Fatalf("rotation %d, a second after the last re-read: %v", i, err)
			}
			clk.Advance(time.Second)
		}
		if got := keysB.lists.Load() - before; got > 3 {
			t.Errorf("storage reads for three new kids a second apart = %d, want at most 3", got)
		}
	})
}

// pair starts two managers sharing one master key and one clock, replica A
// on store and replica B reading its key set through keysB (the same
// database, counted or failing as a test needs).
func pair(t *testing.T, store storage.Store, keysB storage.KeyStore) (clk *clocktest.Clock, a, b *signer.Manager) {
	t.Helper()
	clk = clocktest.New(t0)
	kr := newKeyring(t, masterKey())
	a = newManager(t, store, kr, clk, signer.DefaultConfig())
	b = newManager(t, keysB, kr, clk, signer.DefaultConfig())
	for _, m := range []*signer.Manager{a, b} {
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return clk, a, b
}

// rotateToUnseenKey rotates a with force twice, so that it signs with a
// key no other manager has loaded (one forced rotation activates the
// published next key, which the others know), and returns that key's kid.
func rotateToUnseenKey(t *testing.T, a *signer.Manager) string {
	t.Helper()
	var r signer.Rotation
	for range 2 {
		var err error
		if r, err = a.RotateNow(t.Context(), true); err != nil {
			t.Fatal(err)
		}
	}
	return r.Activated
}
