// Package pat owns the bearer secrets sts hands out — personal access
// tokens and one-time exchange tokens: their format (type prefix, 178
// random bits, CRC32 checksum, base62), their digest at rest (HMAC-SHA256
// under a server pepper) and their lifecycle and authentication. It
// depends on storage and sts only; it knows nothing about Connect, HTTP or
// configuration, and never logs or stores a secret.
package pat
