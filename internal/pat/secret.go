package pat

import "github.com/opensts/sts/internal/secret"

// Prefix is the type prefix of a secret; the format (prefix, 30 base62
// random characters, CRC32 checksum) is internal/secret's, shared by every
// bearer secret sts issues.
type Prefix = secret.Prefix

// Prefixes of the secrets this package issues.
const (
	PrefixPAT           = secret.PrefixPAT
	PrefixExchangeToken = secret.PrefixExchangeToken
)

// SecretPattern is the regular expression secret scanners use to find sts
// secrets (published in docs/api.md); it covers every sts prefix.
const SecretPattern = secret.Pattern

// ErrFormat means a string is not a well-formed secret of the expected
// type; callers reject it without touching storage.
var ErrFormat = secret.ErrFormat

// MinPepperSize is the shortest pepper the service accepts.
const MinPepperSize = 32

// Digest is the value stored for a secret: HMAC-SHA256 under pepper.
func Digest(pepper []byte, s string) []byte { return secret.Digest(pepper, s) }

// DigestID is a short, non-secret label of a digest for logs.
func DigestID(digest []byte) string { return secret.DigestID(digest) }
