package seal

import (
	"bytes"
	"errors"
	"testing"
)

// TestEnvelopeRoundTripAndRewrap: values sealed under a data key survive a
// master-key rotation that re-wraps only the data key; the old master key
// is needed until the re-wrap and not after (docs/security.md D-06, T-71).
func TestEnvelopeRoundTripAndRewrap(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	oldRing, _ := NewKeyring(oldKey)
	e := &Envelope{Keyring: oldRing}
	dk, wrapped, kid, err := e.NewDataKey([]byte("org|row|data_key"))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := dk.Seal([]byte("gho_value"), []byte("org|row|token"))
	if err != nil {
		t.Fatal(err)
	}
	dk.Clear()
	if _, err := dk.Seal([]byte("x"), nil); err == nil {
		t.Error("Seal with a cleared data key succeeded")
	}
	if e.Wraps(kid) != 1 {
		t.Errorf("Wraps(%s) = %d, want 1", kid, e.Wraps(kid))
	}

	rotated, _ := NewKeyring(newKey, oldKey)
	e2 := &Envelope{Keyring: rotated}
	w2, kid2, changed, err := e2.Rewrap(wrapped, kid, []byte("org|row|data_key"))
	if err != nil || !changed || kid2 != rotated.PrimaryID() {
		t.Fatalf("Rewrap = %q, %v, %v; want the new primary", kid2, changed, err)
	}
	if _, _, changed, _ := e2.Rewrap(w2, kid2, []byte("org|row|data_key")); changed {
		t.Error("Rewrap of an already current key reported a change")
	}
	onlyNew, _ := NewKeyring(newKey)
	e3 := &Envelope{Keyring: onlyNew}
	if _, err := e3.OpenDataKey(wrapped, kid, []byte("org|row|data_key")); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("OpenDataKey(old wrap, old key dropped) = %v, want ErrUnknownKey", err)
	}
	dk2, err := e3.OpenDataKey(w2, kid2, []byte("org|row|data_key"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := dk2.Open(ct, []byte("org|row|token"))
	if err != nil || string(got) != "gho_value" {
		t.Fatalf("Open after rewrap = %q, %v", got, err)
	}
}

// TestEnvelopeRejectsMovedValues: a value or a wrapped key copied to another
// record or field does not open (docs/security.md T-70, Vault MoveIntegrityV2).
func TestEnvelopeRejectsMovedValues(t *testing.T) {
	kr, _ := NewKeyring(newKey(t))
	e := &Envelope{Keyring: kr}
	dkA, wA, kid, _ := e.NewDataKey([]byte("org|a|data_key"))
	dkB, _, _, _ := e.NewDataKey([]byte("org|b|data_key"))
	ct, _ := dkA.Seal([]byte("secret"), []byte("org|a|token"))
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		dk   *DataKey
		ct   []byte
		aad  string
	}{
		{"other field", dkA, ct, "org|a|refresh_token"},
		{"other row's key", dkB, ct, "org|a|token"},
		{"other row's AAD", dkA, ct, "org|b|token"},
		{"tampered", dkA, flipped, "org|a|token"},
		{"truncated", dkA, ct[:5], "org|a|token"},
	} {
		if _, err := tc.dk.Open(tc.ct, []byte(tc.aad)); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open = %v, want ErrOpen", tc.name, err)
		}
	}
	if _, err := e.OpenDataKey(wA, kid, []byte("other-org|a|data_key")); !errors.Is(err, ErrOpen) {
		t.Errorf("OpenDataKey(other record) = %v, want ErrOpen", err)
	}
	if bytes.Contains(ct, []byte("secret")) || bytes.Contains(wA, dkA.key) {
		t.Error("ciphertext contains its plaintext")
	}
}
