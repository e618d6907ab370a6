// Package secret is the format of every bearer secret sts hands out —
// refresh tokens, client secrets, and (once pat moves onto it) personal
// access and exchange tokens: a type prefix, 178 random bits in base62 and
// a CRC32 checksum (GitHub's scheme, docs/design.md#tokens), stored only as an
// HMAC-SHA256 digest under a server pepper. It depends on the standard
// library only and never logs or stores a secret.
package secret
