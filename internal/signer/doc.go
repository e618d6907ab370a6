// Package signer owns our token-signing keys: generating them (ES256,
// RS256, EdDSA), sealing their private halves under the master key, their
// life from next to active to retired to deleted, scheduled and on-demand
// rotation and the revocation of a compromised key, coordinated across
// replicas through [storage.KeyStore], and the
// in-memory key set that signs and verifies without touching storage. It
// depends only on storage and seal; token claims live in package tokens and
// the HTTP documents in package discovery.
package signer
