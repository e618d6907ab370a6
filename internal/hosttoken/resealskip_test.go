package hosttoken_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// TestResealGoesPastRowsThatDoNotOpen (docs/security.md T-147): a row that
// does not open (here its host was changed in storage), first in the
// listing order, neither stops `sts keys rotate-master` nor is rewritten:
// the healthy row after it moves to the new master key, and the error names
// the row that stayed behind by ID (never a value), so the operator can
// delete it and retire the old key.
func TestResealGoesPastRowsThatDoNotOpen(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t)
			w := newWorld(t, store)
			ctx := t.Context()
			// IDs are random: the first row in the listing is the one tampered with.
			x := w.create(t, "gho_tampered_value", "ghr_tampered_refresh", "", time.Time{})
			y := w.create(t, "gho_healthy_value", "ghr_healthy_refresh", "", time.Time{})
			rows, err := store.ListHostTokens(ctx, storage.HostTokenFilter{Limit: 10})
			if err != nil || len(rows) != 2 {
				t.Fatalf("ListHostTokens = %d rows, %v", len(rows), err)
			}
			bad, good := x, y
			if rows[0].ID != x.ID {
				bad, good = y, x
			}
			goodToken, goodRefresh := "gho_healthy_value", "ghr_healthy_refresh"
			if good.ID == x.ID {
				goodToken, goodRefresh = "gho_tampered_value", "ghr_tampered_refresh"
			}
			if err := store.UpdateHostToken(ctx, bad.ID, func(old storage.HostToken) (storage.HostToken, error) {
				old.Host = "evil.example"
				return old, nil
			}); err != nil {
				t.Fatal(err)
			}
			before, _ := store.GetHostToken(ctx, bad.ID)

			newKey := bytes.Repeat([]byte{5}, seal.KeySize)
			both, _ := seal.NewKeyring(newKey, w.master)
			n, err := hosttoken.Reseal(ctx, store, &seal.Envelope{Keyring: both})
			var re *seal.ResealError
			if !errors.As(err, &re) || n != 1 {
				t.Fatalf("Reseal = %d, %v; want 1 row re-wrapped and a ResealError", n, err)
			}
			if len(re.IDs) != 1 || re.IDs[0] != bad.ID || !strings.Contains(err.Error(), bad.ID) || !strings.Contains(err.Error(), "1 host token") {
				t.Errorf("ResealError = %+v (%v); want it to name %s alone", re, err, bad.ID)
			}
			if !errors.Is(err, seal.ErrOpen) {
				t.Errorf("error %v does not wrap seal.ErrOpen", err)
			}
			for _, s := range []string{"gho_", "ghr_", "tampered", "healthy"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q discloses %q", err, s)
				}
			}
			only, _ := seal.NewKeyring(newKey)
			w.svc.Envelope = &seal.Envelope{Keyring: only}
			if v, err := w.svc.Value(ctx, w.user, good.ID); err != nil || v.Token != goodToken || v.RefreshToken != goodRefresh {
				t.Fatalf("healthy row with the new key alone = %+v, %v", v, err)
			}
			after, _ := store.GetHostToken(ctx, bad.ID)
			if after.MasterKeyID != before.MasterKeyID || !bytes.Equal(after.SealedDataKey, before.SealedDataKey) || !bytes.Equal(after.SealedToken, before.SealedToken) {
				t.Error("the row that does not open was rewritten")
			}
			// Deleting it (what the CLI tells the operator) leaves a clean run.
			if err := store.DeleteHostToken(ctx, bad.ID); err != nil {
				t.Fatal(err)
			}
			if n, err := hosttoken.Reseal(ctx, store, &seal.Envelope{Keyring: both}); err != nil || n != 0 {
				t.Errorf("Reseal after the delete = %d, %v; want 0, nil", n, err)
			}
		})
	}
}
