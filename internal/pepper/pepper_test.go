package pepper_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pepper"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/ststest"
)

func keyring(t *testing.T, old ...[]byte) (*seal.Keyring, []byte) {
	t.Helper()
	k := make([]byte, seal.KeySize)
	rand.Read(k)
	kr, err := seal.NewKeyring(k, old...)
	if err != nil {
		t.Fatal(err)
	}
	return kr, k
}

func TestLoadCreatesOnceAndIsStable(t *testing.T) {
	store := ststest.NewStore(t)
	kr, _ := keyring(t)
	ctx := t.Context()
	const n = 8
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := pepper.Load(ctx, store, kr, time.Now())
			if err != nil {
				t.Errorf("Load: %v", err)
			}
			got[i] = p
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(got[0], got[i]) || len(got[i]) != pepper.Size {
			t.Fatalf("replica %d got a different pepper: racing creators must converge on one", i)
		}
	}
	row, err := store.GetServerSecret(ctx, pepper.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row.Sealed, got[0]) {
		t.Fatal("stored row contains the pepper in plaintext")
	}
}

// TestMasterRotationKeepsPepper: re-wrapping under a new master key keeps
// the pepper (so every stored digest stays valid), and the old key alone
// can no longer open it (docs/security.md D-06).
func TestMasterRotationKeepsPepper(t *testing.T) {
	store := ststest.NewStore(t)
	ctx := t.Context()
	oldKR, oldKey := keyring(t)
	before, err := pepper.Load(ctx, store, oldKR, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	both, _ := keyring(t, oldKey)
	if n, err := pepper.Reseal(ctx, store, both); n != 1 || err != nil {
		t.Fatalf("Reseal = %d, %v; want 1 row", n, err)
	}
	if n, err := pepper.Reseal(ctx, store, both); n != 0 || err != nil {
		t.Fatalf("second Reseal = %d, %v; want 0 rows", n, err)
	}
	after, err := pepper.Load(ctx, store, both, time.Now())
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("pepper changed across master-key rotation (err %v)", err)
	}
	if _, err := pepper.Load(ctx, store, oldKR, time.Now()); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("Load with only the old master key = %v, want ErrUnknownKey", err)
	}
	// A wrong key never leads to a replacement pepper.
	wrong, _ := keyring(t)
	if _, err := pepper.Load(ctx, store, wrong, time.Now()); err == nil {
		t.Fatal("Load with a wrong master key succeeded")
	}
	if again, _ := pepper.Load(ctx, store, both, time.Now()); !bytes.Equal(again, before) {
		t.Fatal("a failed Load replaced the pepper")
	}
}
