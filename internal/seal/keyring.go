package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the length of a master key: AES-256.
const KeySize = 32

// version prefixes every ciphertext so the format can change later without
// guessing.
const version byte = 1

// ErrOpen is returned when a ciphertext cannot be opened: wrong key, wrong
// AAD (a ciphertext copied to another row) or tampered bytes. It never says
// which, so it cannot serve as an oracle.
var ErrOpen = errors.New("seal: cannot open ciphertext")

// ErrUnknownKey is returned when a ciphertext names a master key the keyring
// does not hold.
var ErrUnknownKey = errors.New("seal: unknown master key")

// Keyring seals with its primary master key and opens with any key it
// holds. It is safe for concurrent use; it is immutable after NewKeyring.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a keyring whose primary (sealing) key is primary;
// old keys open existing ciphertexts during a master-key rotation.
func NewKeyring(primary []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: make(map[string]cipher.AEAD, 1+len(old))}
	for i, key := range append([][]byte{primary}, old...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("seal: master key %d: want %d bytes, got %d", i, KeySize, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		// A random 96-bit nonce per message, prepended to the ciphertext.
		// Safe for far more messages than sts will ever seal under one key.
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		id := KeyID(key)
		if i == 0 {
			k.primary = id
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// KeyID names a master key without revealing it: a truncated HMAC of a
// fixed label under the key, safe to log and to store beside ciphertexts.
func KeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("sts master key id v1"))
	return "mk-" + hex.EncodeToString(m.Sum(nil)[:8])
}

// PrimaryID is the ID of the key Seal uses.
func (k *Keyring) PrimaryID() string { return k.primary }

// Has reports whether the keyring holds the master key with this ID.
func (k *Keyring) Has(keyID string) bool { _, ok := k.aeads[keyID]; return ok }

// Seal encrypts plaintext under the primary key, authenticating aad with
// it, and returns the ciphertext and the ID of the key that sealed it.
// Callers pass the row's identity as aad (for example "host_token:<id>") so
// a ciphertext moved to another row does not open.
func (k *Keyring) Seal(plaintext, aad []byte) (ciphertext []byte, keyID string, err error) {
	aead := k.aeads[k.primary]
	out := aead.Seal([]byte{version}, nil, plaintext, aad)
	return out, k.primary, nil
}

// Open decrypts a ciphertext sealed under keyID with the same aad. It
// returns ErrUnknownKey or ErrOpen.
func (k *Keyring) Open(ciphertext []byte, keyID string, aad []byte) ([]byte, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, keyID)
	}
	if len(ciphertext) < 1+aead.NonceSize()+aead.Overhead() || ciphertext[0] != version {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, nil, ciphertext[1:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Reseal opens a ciphertext with whichever key sealed it and seals it again
// under the primary key; master-key rotation re-wraps rows with it.
func (k *Keyring) Reseal(ciphertext []byte, keyID string, aad []byte) ([]byte, string, error) {
	pt, err := k.Open(ciphertext, keyID, aad)
	if err != nil {
		return nil, "", err
	}
	defer clear(pt)
	return k.Seal(pt, aad)
}
