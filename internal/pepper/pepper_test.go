package pepper_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pepper"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
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

// TestResealGoesPastARowThatDoesNotOpen: a server secret that does not open
// (here garbage under the old key), listed before the pepper, is left as it
// is and named by ID; the pepper still moves to the new master key.
func TestResealGoesPastARowThatDoesNotOpen(t *testing.T) {
	store := ststest.NewStore(t)
	ctx := t.Context()
	oldKR, oldKey := keyring(t)
	before, err := pepper.Load(ctx, store, oldKR, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bad := storage.ServerSecret{ID: "a-damaged", Sealed: bytes.Repeat([]byte{1}, 64), MasterKeyID: oldKR.PrimaryID(), CreatedAt: storage.Now(time.Now())}
	if err := store.CreateServerSecret(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if rows, _ := store.ListServerSecrets(ctx); len(rows) != 2 || rows[0].ID != bad.ID {
		t.Fatalf("ListServerSecrets = %+v; want the damaged row first", rows)
	}
	both, newKey := keyring(t, oldKey)
	n, err := pepper.Reseal(ctx, store, both)
	if n != 1 || !errors.Is(err, seal.ErrOpen) || !strings.Contains(fmt.Sprint(err), bad.ID) {
		t.Fatalf("Reseal = %d, %v; want the pepper re-wrapped and an error naming %s", n, err, bad.ID)
	}
	onlyNew, _ := seal.NewKeyring(newKey)
	if after, err := pepper.Load(ctx, store, onlyNew, time.Now()); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("pepper with the new key alone: %v", err)
	}
	if got, _ := store.GetServerSecret(ctx, bad.ID); got.MasterKeyID != oldKR.PrimaryID() || !bytes.Equal(got.Sealed, bad.Sealed) {
		t.Error("the row that does not open was rewritten")
	}
}
