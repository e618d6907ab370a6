package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
)

// dataKeyVersion prefixes ciphertexts sealed under a data key.
const dataKeyVersion byte = 2

// Envelope is two-level envelope encryption: every record gets its own
// random AES-256 data key, the data key seals the record's values, and
// the Keyring's primary master key wraps the data key. Rotating the master
// key then re-wraps 32-byte data keys (Rewrap) and never touches the
// values. It counts wraps per master key, because each wrap consumes one
// random 96-bit nonce of that key (NIST SP 800-38D bounds them at 2^32).
// It is safe for concurrent use.
type Envelope struct {
	Keyring *Keyring

	mu    sync.Mutex
	wraps map[string]*atomic.Uint64
}

// DataKey is an unwrapped per-record key. Call Clear when done with it.
type DataKey struct{ key []byte }

// NewDataKey draws a fresh data key and returns it with its wrapped form
// and the master key ID that wrapped it; store both beside the record.
// aad binds the wrapped key to its record (for example its organization and
// ID) so a wrapped key copied to another record does not unwrap.
func (e *Envelope) NewDataKey(aad []byte) (dk *DataKey, wrapped []byte, keyID string, err error) {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	wrapped, keyID, err = e.Keyring.Seal(key, aad)
	if err != nil {
		clear(key)
		return nil, nil, "", err
	}
	e.count(keyID)
	return &DataKey{key: key}, wrapped, keyID, nil
}

// OpenDataKey unwraps a data key with the master key keyID. It returns
// ErrUnknownKey or ErrOpen.
func (e *Envelope) OpenDataKey(wrapped []byte, keyID string, aad []byte) (*DataKey, error) {
	key, err := e.Keyring.Open(wrapped, keyID, aad)
	if err != nil {
		return nil, err
	}
	if len(key) != KeySize {
		clear(key)
		return nil, ErrOpen
	}
	return &DataKey{key: key}, nil
}

// Rewrap unwraps a data key with whichever master key wrapped it and wraps
// it again under the primary. It reports changed=false (and returns the
// input) when the primary already wraps it.
func (e *Envelope) Rewrap(wrapped []byte, keyID string, aad []byte) (out []byte, newID string, changed bool, err error) {
	if keyID == e.Keyring.PrimaryID() {
		return wrapped, keyID, false, nil
	}
	out, newID, err = e.Keyring.Reseal(wrapped, keyID, aad)
	if err != nil {
		return nil, "", false, err
	}
	e.count(newID)
	return out, newID, true, nil
}

// Wraps reports how many data keys this process wrapped under master key
// keyID.
func (e *Envelope) Wraps(keyID string) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.wraps[keyID]; c != nil {
		return c.Load()
	}
	return 0
}

func (e *Envelope) count(keyID string) {
	e.mu.Lock()
	if e.wraps == nil {
		e.wraps = map[string]*atomic.Uint64{}
	}
	c := e.wraps[keyID]
	if c == nil {
		c = new(atomic.Uint64)
		e.wraps[keyID] = c
	}
	e.mu.Unlock()
	c.Add(1)
}

func (d *DataKey) aead() (cipher.AEAD, error) {
	if d == nil || len(d.key) != KeySize {
		return nil, errors.New("seal: data key cleared")
	}
	block, err := aes.NewCipher(d.key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// Seal encrypts plaintext under the data key, authenticating aad (the
// record and the field, so a value moved to another field fails to open).
func (d *DataKey) Seal(plaintext, aad []byte) ([]byte, error) {
	a, err := d.aead()
	if err != nil {
		return nil, err
	}
	return a.Seal([]byte{dataKeyVersion}, nil, plaintext, aad), nil
}

// Open decrypts a value sealed by Seal with the same aad; ErrOpen says
// only that it failed.
func (d *DataKey) Open(ciphertext, aad []byte) ([]byte, error) {
	a, err := d.aead()
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 1+a.NonceSize()+a.Overhead() || ciphertext[0] != dataKeyVersion {
		return nil, ErrOpen
	}
	pt, err := a.Open(nil, nil, ciphertext[1:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Clear zeroes the key; the DataKey is unusable afterwards.
func (d *DataKey) Clear() {
	if d != nil {
		clear(d.key)
		d.key = nil
	}
}
