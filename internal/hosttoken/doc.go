// Package hosttoken keeps the SCM tokens runners need (gitpod.v1.RunnerConfigurationService): it
// validates input, seals token and refresh token under a per-row data key
// wrapped by the master key (seal.Envelope), decides who may act on a token,
// keeps each runner's X25519 public key, delivers a token's values only to
// its runner and only sealed to that key (an anonymous NaCl box, after the
// read is audited), and refreshes OAuth tokens before they expire
// (Refresher). It depends on storage, seal and sts, never
// on the generated API code, config or a storage backend.
package hosttoken
