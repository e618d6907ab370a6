package pat

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"strings"
)

// Prefix is the type prefix of a secret: it tells secret scanners and
// people what leaked, and lets a verifier reject a secret of the wrong type
// before any storage lookup (GitHub's token format).
type Prefix string

// Prefixes of the secrets sts issues.
const (
	PrefixPAT           Prefix = "sts_pat_"
	PrefixExchangeToken Prefix = "sts_ext_"
)

// Layout of the part after the prefix: randomLen base62 characters (30 ×
// log2(62) ≈ 178 bits, above DESIGN §4's 160) and a checksumLen base62
// CRC32 (62^6 > 2^32) over prefix and random part.
const (
	randomLen   = 30
	checksumLen = 6
	bodyLen     = randomLen + checksumLen
)

// SecretPattern is the regular expression secret scanners use to find sts
// secrets (published in docs/api.md).
const SecretPattern = `\bsts_(?:pat|ext)_[0-9A-Za-z]{36}\b`

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrFormat means a string is not a well-formed secret of the expected
// type: wrong prefix, wrong length, a character outside base62 or a
// checksum mismatch. Callers reject it without touching storage.
var ErrFormat = errors.New("malformed secret")

// Generate returns a new random secret with prefix p.
func (p Prefix) Generate() string {
	var b strings.Builder
	b.Grow(len(p) + bodyLen)
	b.WriteString(string(p))
	// Rejection sampling keeps every character uniform: bytes ≥ 248
	// (4 × 62) are discarded rather than folded modulo 62.
	var buf [64]byte
	for n := 0; n < randomLen; {
		rand.Read(buf[:]) // never fails (Go 1.24+)
		for _, c := range buf {
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
// exact length (a truncated secret is never "still valid", SECURITY.md
// b.65), base62 only, and a matching checksum (b.66). It does no I/O and
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
	if checksum(s[:cut]) != s[cut:] {
		return ErrFormat
	}
	return nil
}

// checksum is the CRC32 (IEEE) of s as checksumLen base62 digits, most
// significant first, zero-padded.
func checksum(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// MinPepperSize is the shortest pepper Digest accepts from constructors.
const MinPepperSize = 32

// Digest is the value stored for secret: HMAC-SHA256 under pepper. A
// database dump without the pepper cannot be used to test guesses.
func Digest(pepper []byte, secret string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// DigestID is a short, non-secret label of a digest for logs: its first
// 8 bytes in hex. It identifies a token in logs without revealing it.
func DigestID(digest []byte) string {
	return hex.EncodeToString(digest[:min(8, len(digest))])
}
