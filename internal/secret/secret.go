package secret

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"strings"
	"sync"
	"sync/atomic"
)

// Prefix is the type prefix of a secret: it tells secret scanners and
// people what leaked, and lets a verifier reject a secret of the wrong type
// before any storage lookup.
type Prefix string

// Prefixes of the secrets sts issues. PAT and exchange-token prefixes are
// the ones internal/pat uses, so one scanner pattern covers all.
const (
	PrefixPAT           Prefix = "sts_pat_"
	PrefixExchangeToken Prefix = "sts_ext_"
	PrefixRefreshToken  Prefix = "sts_rt_"
	PrefixClientSecret  Prefix = "sts_cs_"
	// PrefixAuthCode is the authorization code's. Codes live at most a
	// minute and die at first use, so the leak-report endpoint and the
	// scanner pattern leave them out.
	PrefixAuthCode Prefix = "sts_ac_"
)

// Prefixes lists every prefix sts issues, for the leak-report endpoint.
var Prefixes = []Prefix{PrefixPAT, PrefixExchangeToken, PrefixRefreshToken, PrefixClientSecret}

// Pattern is the regular expression secret scanners use to find sts
// secrets (GitHub secret-scanning partner format).
const Pattern = `\bsts_(?:pat|ext|rt|cs)_[0-9A-Za-z]{36}\b`

// Layout after the prefix: randomLen base62 characters (30 × log2(62) ≈
// 178 bits, above the 160 bits of docs/design.md#secrets) and a checksumLen base62 CRC32
// (62^6 > 2^32) over prefix and random part.
const (
	randomLen   = 30
	checksumLen = 6
	bodyLen     = randomLen + checksumLen
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrFormat means a string is not a well-formed secret of the expected
// type: wrong prefix or length, a character outside base62, or a checksum
// mismatch. Callers reject it without touching storage (docs/security.md T-66).
var ErrFormat = errors.New("malformed secret")

// Generate returns a new random secret with prefix p.
func (p Prefix) Generate() string {
	var buf [64]byte
	return p.build(func() []byte {
		rand.Read(buf[:]) // never fails (Go 1.24+)
		return buf[:]
	})
}

// Derive returns the secret with prefix p that is determined by key and
// input: HMAC-SHA256(key, input ‖ counter) drives the same base62 sampling
// as Generate. Whoever lacks key cannot compute it; whoever holds key and
// input always gets the same secret. The refresh grant uses it to answer a
// retried rotation with the same successor without storing it.
func (p Prefix) Derive(key []byte, input string) string {
	var ctr uint32
	return p.build(func() []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], ctr)
		ctr++
		m.Write(c[:])
		return m.Sum(nil)
	})
}

// build samples randomLen base62 characters from next. Rejection
// sampling keeps every character uniform: bytes ≥ 248 (4 × 62) are
// discarded rather than folded modulo 62.
func (p Prefix) build(next func() []byte) string {
	var b strings.Builder
	b.Grow(len(p) + bodyLen)
	b.WriteString(string(p))
	for n := 0; n < randomLen; {
		for _, c := range next() {
			if c >= 248 {
				continue
			}
			b.WriteByte(base62[c%62])
			if n++; n == randomLen {
				break
			}
		}
	}
	b.WriteString(checksum(b.String()))
	return b.String()
}

// Parse checks that s is a well-formed secret of type p: exact prefix,
// exact length (a truncated secret is never "still valid", docs/security.md
// T-65), base62 only, and a matching checksum (T-66). It does no I/O and
// returns ErrFormat for every failure.
func (p Prefix) Parse(s string) error {
	if len(s) != len(p)+bodyLen || !strings.HasPrefix(s, string(p)) {
		return ErrFormat
	}
	for i := len(p); i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return ErrFormat
		}
	}
	cut := len(s) - checksumLen
	if sum := checksumOf(s[:cut]); string(sum[:]) != s[cut:] {
		return ErrFormat
	}
	return nil
}

// Classify returns the prefix of a well-formed sts secret of any type, or
// ErrFormat.
func Classify(s string) (Prefix, error) {
	for _, p := range Prefixes {
		if strings.HasPrefix(s, string(p)) {
			return p, p.Parse(s)
		}
	}
	return "", ErrFormat
}

// checksum is the CRC32 (IEEE) of s as checksumLen base62 digits, most
// significant first, zero-padded.
func checksum(s string) string {
	sum := checksumOf(s)
	return string(sum[:])
}

// checksumOf is checksum on the stack: Parse, on every client
// authentication, compares it without allocating (TestParseAllocs).
func checksumOf(s string) [checksumLen]byte {
	v := crcIEEE(s)
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return out
}

// crcIEEE is crc32.ChecksumIEEE(s) a byte at a time over the IEEE table,
// without the []byte copy of s that crc32's dispatch makes escape
// (TestChecksumMatchesCRC32). Secrets are a few dozen bytes.
func crcIEEE(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// MinPepperSize is the shortest pepper constructors accept.
const MinPepperSize = 32

// Digest is the value stored for secret: HMAC-SHA256 under pepper. A
// database dump without the pepper cannot be used to test guesses, and a
// high-entropy secret needs no slow password hash (docs/performance.md).
//
// The keyed HMAC is reused: crypto/hmac.New builds two SHA-256 states and
// their pads (6 allocations, about a third of the digest's time), so Digest
// keeps a pool of keyed hashes per pepper, for the first maxKeyedPeppers
// distinct peppers it sees; any further pepper gets a fresh hmac.New as
// before (TestDigestMatchesHMAC, TestDigestAllocs; docs/performance.md).
// It allocates its result, which callers store; DigestSum does not.
func Digest(pepper []byte, secret string) []byte {
	d := DigestSum(pepper, secret)
	return d[:]
}

// DigestSum is [Digest] as an array, for a caller that only compares it
// (client authentication on every token request): it lives on the
// caller's stack, where Digest's slice is one allocation a call. The hash
// writes its sum into the pooled hash's own scratch (a slice handed to
// the hash.Hash interface escapes) and is copied out.
func DigestSum(pepper []byte, secret string) (out [sha256.Size]byte) {
	kp := keyedFor(pepper)
	if kp == nil {
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte(secret))
		copy(out[:], m.Sum(nil))
		return out
	}
	k, _ := kp.pool.Get().(*keyedHash)
	if k == nil {
		k = &keyedHash{h: hmac.New(sha256.New, kp.key)}
	}
	k.buf = append(k.buf[:0], secret...)
	k.h.Write(k.buf)
	k.sum = k.h.Sum(k.sum[:0])
	copy(out[:], k.sum)
	k.h.Reset()
	clear(k.buf) // the secret's bytes do not outlive the call,
	clear(k.sum) // nor its digest (TestDigestSumLeavesNothingPooled)
	if cap(k.buf) > 1<<10 {
		k.buf = nil
	}
	kp.pool.Put(k)
	return out
}

// maxKeyedPeppers bounds how many peppers Digest keeps keyed hashes for.
// A process has one pepper (and the few keys derived from it); tests build
// more, and past the bound they are digested without a pool.
const maxKeyedPeppers = 8

// keyedHash is a pooled HMAC-SHA256 keyed with one pepper, reset, and a
// scratch buffer for the input (a string converted for the interface
// call would be copied to the heap every time).
type keyedHash struct {
	h   hash.Hash
	buf []byte
	sum []byte // the last digest, copied out by DigestSum
}

type keyedPool struct {
	key  []byte // a copy: the caller's slice may change
	pool sync.Pool
}

var keyed struct {
	mu    sync.Mutex
	pools atomic.Pointer[[]*keyedPool] // copied on write
}

// keyedFor returns the pool for pepper, adding one while there is room;
// nil once maxKeyedPeppers other peppers have one.
func keyedFor(pepper []byte) *keyedPool {
	if kp := findKeyed(keyed.pools.Load(), pepper); kp != nil {
		return kp
	}
	keyed.mu.Lock()
	defer keyed.mu.Unlock()
	cur := keyed.pools.Load()
	if kp := findKeyed(cur, pepper); kp != nil {
		return kp
	}
	var list []*keyedPool
	if cur != nil {
		list = *cur
	}
	if len(list) >= maxKeyedPeppers {
		return nil
	}
	kp := &keyedPool{key: bytes.Clone(pepper)}
	next := append(list[:len(list):len(list)], kp)
	keyed.pools.Store(&next)
	return kp
}

func findKeyed(list *[]*keyedPool, pepper []byte) *keyedPool {
	if list == nil {
		return nil
	}
	for _, kp := range *list {
		// Constant time, though both sides are the process's own keys.
		if hmac.Equal(kp.key, pepper) {
			return kp
		}
	}
	return nil
}

// Equal compares two digests in constant time (docs/security.md T-67).
func Equal(a, b []byte) bool { return len(a) == sha256.Size && hmac.Equal(a, b) }

// DigestID is a short, non-secret label of a digest for logs: its first
// 8 bytes in hex.
func DigestID(digest []byte) string {
	return hex.EncodeToString(digest[:min(8, len(digest))])
}

// SubKey derives an independent key for one purpose from pepper, so that
// a digest key and a derivation key are never the same bytes.
func SubKey(pepper []byte, purpose string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("sts secret subkey v1\x00" + purpose))
	return m.Sum(nil)
}
