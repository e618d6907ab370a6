package signer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
)

// TestRotateNow is the on-demand rotation shared by `sts keys rotate` and
// KeyService/RotateSigningKey: it refuses a next key younger than
// PublishAhead unless forced, rotates from the stored set even when this
// manager's snapshot is stale (another replica rotated since its last
// poll), swaps its own snapshot at once, and never rotates a sealed set.
func TestRotateNow(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk := clocktest.New(t0)
		kr := newKeyring(t, masterKey())
		m := newManager(t, store, kr, clk, signer.DefaultConfig())
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		a, b := m.ActiveKeyID(), keysByState(t, store)[storage.KeyNext][0].ID

		_, err := m.RotateNow(ctx, false)
		if !errors.Is(err, signer.ErrNextNotReady) || !strings.Contains(err.Error(), b) {
			t.Fatalf("RotateNow(no force) with a new next key = %v, want ErrNextNotReady naming %s", err, b)
		}
		if m.ActiveKeyID() != a {
			t.Fatal("a refused rotation changed the active key")
		}

		// Another replica rotates (forced); this manager has not polled.
		other := newManager(t, store, kr, clk, signer.DefaultConfig())
		if err := other.Init(ctx); err != nil {
			t.Fatal(err)
		}
		r, err := other.RotateNow(ctx, true)
		if err != nil || r.Activated != b || r.Retired != a {
			t.Fatalf("other replica RotateNow(force) = %+v, %v", r, err)
		}
		c := r.Next
		if m.ActiveKeyID() != a {
			t.Fatal("test setup: this manager already saw the other rotation")
		}
		// Rotate/ForceRotate act on the stale snapshot: already rotated.
		if r, err := m.ForceRotate(ctx, clk.Now()); err != nil || !r.AlreadyRotated {
			t.Fatalf("ForceRotate on a stale snapshot = %+v, %v; want AlreadyRotated", r, err)
		}
		// RotateNow reloads first and rotates away from b, which signs now.
		clk.Advance(2 * time.Hour) // c is published long enough
		r, err = m.RotateNow(ctx, false)
		if err != nil || r.AlreadyRotated || r.Retired != b || r.Activated != c || r.Next == "" {
			t.Fatalf("RotateNow on a stale snapshot = %+v, %v; want %s retired and %s active", r, err, b, c)
		}
		if m.ActiveKeyID() != c {
			t.Errorf("ActiveKeyID after RotateNow = %s, want %s at once", m.ActiveKeyID(), c)
		}
		ev := r.AuditEvent("principal:x", "req-1", false, clk.Now())
		if ev.Action != signer.ActionRotate || ev.Target != "signing_key:"+c || ev.Actor != "principal:x" || ev.RequestID != "req-1" ||
			!strings.Contains(ev.Detail, "retired="+b) || !strings.Contains(ev.Detail, "force=false") || ev.ID == "" {
			t.Errorf("AuditEvent = %+v", ev)
		}

		// A manager with the wrong master key never rotates, forced or not.
		before, _ := store.ListSigningKeys(ctx)
		sealed := newManager(t, store, newKeyring(t, masterKey()), clk, signer.DefaultConfig())
		for _, force := range []bool{false, true} {
			if _, err := sealed.RotateNow(ctx, force); !errors.Is(err, signer.ErrSealed) {
				t.Errorf("sealed RotateNow(force=%v) = %v, want ErrSealed", force, err)
			}
		}
		after, _ := store.ListSigningKeys(ctx)
		if len(after) != len(before) {
			t.Errorf("a sealed manager changed the key set: %d keys, want %d", len(after), len(before))
		}
	})
}
