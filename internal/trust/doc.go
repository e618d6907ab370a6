// Package trust is the runtime registry of identity pools and their
// providers: it loads them from storage, compiles each pool's CEL policy once
// per revision, keeps an immutable snapshot that the exchange hot path reads
// without locks or storage reads, and refreshes it on an interval or on
// demand. It also selects the pool a subject token belongs to (explicit ID,
// Google provider resource name, or the unique pool trusting its iss and aud).
//
// It depends on internal/storage and internal/policy only; it never verifies
// signatures (federation does) and never writes to storage.
package trust
