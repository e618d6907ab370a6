package signer_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// flakyKeys fails reads of the key set while down, and can hold each read
// for a while (a slow database).
type flakyKeys struct {
	storage.KeyStore
	down  atomic.Bool
	delay time.Duration
	lists atomic.Int64
}

func (f *flakyKeys) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	f.lists.Add(1)
	time.Sleep(f.delay)
	if f.down.Load() {
		return nil, errors.New("database unreachable")
	}
	return f.KeyStore.ListSigningKeys(ctx)
}

// twoReplicas: replica A rotates with force twice, so it signs with a key
// replica B (same database) has not loaded; it returns A's token and B.
func twoReplicas(t *testing.T, store storage.Store, keysB storage.KeyStore) (string, *signer.Manager, *clocktest.Clock) {
	t.Helper()
	clk, a, b := pair(t, store, keysB)
	return newKeyToken(t, a, clk), b, clk
}

// newKeyToken makes a sign with a key no other manager has loaded (see
// rotateToUnseenKey) and returns a token of that key for audience "api"
// from issuer https://sts.example.
func newKeyToken(t *testing.T, a *signer.Manager, clk *clocktest.Clock) string {
	t.Helper()
	rotateToUnseenKey(t, a)
	tok, _, err := (&tokens.Issuer{Signer: a, IssuerURL: "https://sts.example", Now: clk.Now}).MintAccessToken(t.Context(), tokens.AccessClaims{
		Subject: "s", Audience: tokens.Audience{"api"}, Expiry: tokens.NewNumericDate(clk.Now().Add(10 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestUnknownKidStorageDown (docs/security.md F-45): a kid replica B does
// not know and cannot look up, because storage is down, is "cannot tell"
// (sts.Unavailable, which introspection answers 503 and bearer auth
// unavailable), never a definite "invalid token".
func TestUnknownKidStorageDown(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		keysB := &flakyKeys{KeyStore: store}
		tok, b, clk := twoReplicas(t, store, keysB)
		keysB.down.Store(true)
		v := &tokens.Verifier{Keys: b, Issuer: "https://sts.example", Now: clk.Now}
		_, err := v.VerifyAccessToken(t.Context(), tok, "api")
		if sts.ErrorCode(err) != sts.Unavailable {
			t.Fatalf("unknown kid with storage down = %v (code %v), want sts.Unavailable", err, sts.ErrorCode(err))
		}
		// Storage back, the interval over: the token verifies.
		keysB.down.Store(false)
		clk.Advance(signer.LookupInterval)
		if _, err := v.VerifyAccessToken(t.Context(), tok, "api"); err != nil {
			t.Fatalf("after storage came back: %v", err)
		}
	})
}

// TestUnknownKidConcurrentLookups (docs/security.md F-45): many requests
// meeting the same new kid at once share one re-read of the key set
// (single flight) and every one of them accepts the token; none is
// answered "unknown key" because another request was re-reading.
func TestUnknownKidConcurrentLookups(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		keysB := &flakyKeys{KeyStore: store, delay: 50 * time.Millisecond}
		tok, b, clk := twoReplicas(t, store, keysB)
		v := &tokens.Verifier{Keys: b, Issuer: "https://sts.example", Now: clk.Now}
		before := keysB.lists.Load()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 20 {
			wg.Go(func() {
				if _, err := v.VerifyAccessToken(t.Context(), tok, "api"); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := failed.Load(); n != 0 {
			t.Errorf("%d of 20 concurrent verifications of a new kid failed", n)
		}
		if n := keysB.lists.Load() - before; n > 2 { // one per algorithm of the set at most
			t.Errorf("%d re-reads of the key set for one kid, want one", n)
		}
	})
}
