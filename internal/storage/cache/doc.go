// Package cache is a per-node cache of client and principal records in
// front of a [storage.Store], for the two hot paths that read one of each on
// every request: client authentication (token, introspection and
// revocation endpoints) and the client_credentials grant.
//
// It is a decorator (docs/architecture.md#storage): [Store] embeds the backend, so every other
// method passes through unchanged. Plain GetClient and GetPrincipal still
// read the backend — admin APIs and authorization checks always see the
// stored row — and refresh the cache on the way. Only a caller that asks
// for it by name, through [Store.CachedClient] or [Store.CachedPrincipal],
// may get a copy up to TTL old, and it learns whether it did.
//
// How fresh a cached answer is (docs/design.md#storage-and-replicas gives cached PAT checks the same
// 5 s bound):
//
//   - A change made through this Store (this replica's revocation endpoint,
//     admin API) drops the record at once: the next read goes to the
//     backend. A read that began before the change and ends after it does
//     not put its older copy back (a generation counter guards the fill).
//   - A change made by another replica or by the CLI (a separate process on
//     the same database) is seen within TTL: a disabled client or principal
//     may authenticate or get a token on this replica for up to TTL.
//   - Callers never refuse on a cached copy: clientauth and
//     grants.ClientCredentials re-read the backend before saying no, so a
//     rotated secret or a re-enabled client works everywhere at once, and a
//     refusal costs the same one storage read as before (no timing
//     difference between an unknown client and a wrong secret).
//
// Not-found is never cached. Entries are capped (the map is cleared when
// full), so a flood of distinct IDs costs reads, never memory.
package cache
