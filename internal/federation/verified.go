package federation

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/opensts/sts/internal/storage"
)

// VerifiedCache remembers which subject tokens' signatures verified, so that
// the same bytes presented again under the same provider and key skip the
// signature arithmetic (docs/design.md#verified-subject-tokens,
// docs/security.md T-95, T-96). It holds no claims and no token: an entry
// is a SHA-256 digest, the key object that verified the signature and the
// token's exp. Everything else Verify checks still runs on every request:
// size, shape and strict decoding, the provider's state, algorithm
// allowlist and issuer, the key lookup in the current key set, exp, nbf,
// iat, token age, aud and sub.
//
// A hit needs all of:
//   - the same token bytes, pool ID, provider ID and provider updated_at
//     (the digest covers them; another provider, or the same one after a
//     change, misses);
//   - the same key object as the current key set's for the token's kid: a
//     key set parsed again (a refresh, a rotation, a changed upload) has new
//     key objects, so a key that left the set, or another key under the
//     same kid, never reaches the cache;
//   - a time before the token's exp (an entry never outlives it).
//
// Only verifications that succeeded are added; tokens of one-time-use
// providers are not (they are accepted once). Past its size the least
// recently used entry is evicted. A nil *VerifiedCache is no cache. serve
// sizes it with federation.verified_token_cache (docs/configuration.md).
type VerifiedCache struct {
	// Hits and Misses count lookups, for metrics.
	Hits, Misses atomic.Uint64

	mu  sync.Mutex
	lru *simplelru.LRU[[32]byte, verifiedEntry]
}

type verifiedEntry struct {
	key *key      // the key that verified the signature
	exp time.Time // the token's exp
}

// NewVerifiedCache returns a cache of at most size entries, or nil (no
// cache) when size ≤ 0.
func NewVerifiedCache(size int) *VerifiedCache {
	if size <= 0 {
		return nil
	}
	lru, _ := simplelru.NewLRU[[32]byte, verifiedEntry](size, nil) // errors only for a size ≤ 0
	return &VerifiedCache{lru: lru}
}

// Len returns the number of entries.
func (c *VerifiedCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// verifiedDigest is the cache key: SHA-256 over the provider's identity and
// version and the exact token bytes, each field length-prefixed.
func verifiedDigest(p *storage.Provider, raw string) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, s := range [...]string{p.PoolID, p.ID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(p.UpdatedAt.UnixNano()))
	h.Write(n[:])
	h.Write([]byte(raw))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// verified reports whether d's signature was verified by k and the token
// has not reached its exp. A stale entry (another key, or expired) is
// removed.
func (c *VerifiedCache) verified(d [32]byte, k *key, now time.Time) bool {
	c.mu.Lock()
	e, ok := c.lru.Get(d)
	if ok && (e.key != k || !now.Before(e.exp)) {
		c.lru.Remove(d)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		c.Hits.Add(1)
	} else {
		c.Misses.Add(1)
	}
	return ok
}

// add records that k verified d's signature and every check passed, until
// exp. Nothing is added at or after exp.
func (c *VerifiedCache) add(d [32]byte, k *key, exp, now time.Time) {
	if !now.Before(exp) {
		return
	}
	c.mu.Lock()
	c.lru.Add(d, verifiedEntry{key: k, exp: exp}) // past the size, evicts the least recently used
	c.mu.Unlock()
}
