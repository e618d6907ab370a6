package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr, err := NewKeyring(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("gho_secret-scm-token")
	ct, id, err := kr.Seal(pt, []byte("host_token:1"))
	if err != nil {
		t.Fatal(err)
	}
	if id != kr.PrimaryID() {
		t.Errorf("Seal key id = %q, want %q", id, kr.PrimaryID())
	}
	if bytes.Contains(ct, pt) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := kr.Open(ct, id, []byte("host_token:1"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v; want %q, nil", got, err, pt)
	}
	// Two seals of one plaintext differ (random nonce).
	ct2, _, _ := kr.Seal(pt, []byte("host_token:1"))
	if bytes.Equal(ct, ct2) {
		t.Error("two seals of the same plaintext are identical")
	}
}

// TestOpenRejects covers docs/security.md D-06 and the AAD rule of docs/design.md#sealed-secrets: a
// ciphertext copied to another row, tampered with, or opened under another
// key must not decrypt, and the error must not say which.
func TestOpenRejects(t *testing.T) {
	kr, _ := NewKeyring(newKey(t))
	other, _ := NewKeyring(newKey(t))
	ct, id, _ := kr.Seal([]byte("secret"), []byte("row:1"))
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name    string
		kr      *Keyring
		ct      []byte
		id      string
		aad     string
		wantErr error
	}{
		{"other row (AAD)", kr, ct, id, "row:2", ErrOpen},
		{"tampered", kr, flipped, id, "row:1", ErrOpen},
		{"truncated", kr, ct[:10], id, "row:1", ErrOpen},
		{"empty", kr, nil, id, "row:1", ErrOpen},
		{"wrong version", kr, append([]byte{9}, ct[1:]...), id, "row:1", ErrOpen},
		{"unknown key id", other, ct, id, "row:1", ErrUnknownKey},
		{"other key, claimed id", other, ct, other.PrimaryID(), "row:1", ErrOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.kr.Open(tc.ct, tc.id, []byte(tc.aad)); !errors.Is(err, tc.wantErr) {
				t.Errorf("Open() error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestResealRotatesToPrimary(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	oldRing, _ := NewKeyring(oldKey)
	ct, oldID, _ := oldRing.Seal([]byte("secret"), []byte("row:1"))

	rotated, err := NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	ct2, id2, err := rotated.Reseal(ct, oldID, []byte("row:1"))
	if err != nil {
		t.Fatal(err)
	}
	if id2 == oldID || id2 != rotated.PrimaryID() {
		t.Fatalf("Reseal key id = %q, want the new primary %q", id2, rotated.PrimaryID())
	}
	onlyNew, _ := NewKeyring(newKey)
	if got, err := onlyNew.Open(ct2, id2, []byte("row:1")); err != nil || string(got) != "secret" {
		t.Fatalf("Open after reseal = %q, %v", got, err)
	}
}

func TestNewKeyringRejectsBadLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKeyring(make([]byte, n)); err == nil {
			t.Errorf("NewKeyring(%d bytes) = nil error, want error", n)
		}
	}
}

func TestMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "master.key")
	if _, err := LoadMasterKey(path, ""); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("LoadMasterKey(missing) error = %v, want ErrNoMasterKey", err)
	}
	key, err := GenerateMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master key mode = %v, want 0600", fi.Mode().Perm())
	}
	got, err := LoadMasterKey(path, "")
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("LoadMasterKey = %x, %v; want the generated key", got, err)
	}
	// Never overwrite: a second generate fails and the key is unchanged.
	if _, err := GenerateMasterKeyFile(path); err == nil {
		t.Fatal("GenerateMasterKeyFile over an existing file succeeded")
	}
	if again, _ := LoadMasterKey(path, ""); !bytes.Equal(again, key) {
		t.Fatal("existing master key changed")
	}
}

func TestLoadMasterKeyEnvAndBadInput(t *testing.T) {
	key := newKey(t)
	env := base64.StdEncoding.EncodeToString(key)
	got, err := LoadMasterKey("/nonexistent", env)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("LoadMasterKey(env) = %x, %v", got, err)
	}
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString(key[:16])), 0o600)
	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("not base64 at all!"), 0o600)
	for _, tc := range []struct{ name, file, env string }{
		{"short env", "", base64.StdEncoding.EncodeToString(key[:31])},
		{"garbage env", "", "%%%"},
		{"short file", short, ""},
		{"garbage file", garbage, ""},
	} {
		_, err := LoadMasterKey(tc.file, tc.env)
		if err == nil || errors.Is(err, ErrNoMasterKey) {
			t.Errorf("%s: error = %v, want a non-ErrNoMasterKey error (bad keys must stop start-up, not trigger generation)", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(key[:16])) {
			t.Errorf("%s: error leaks key material: %v", tc.name, err)
		}
	}
}
