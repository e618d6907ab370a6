// Package pools is the lifecycle of identity pools and their providers —
// the trust policy external tokens are judged by (docs/design.md#the-model) — shared by
// the admin API (api.PoolService) and the CLI (sts pool …, sts provider
// …): validation (record IDs, CEL compiled with the token endpoint's
// compiler and cost budget, issuer and key rules), storage, the audit
// trail and the admin dry run (TestPool, docs/design.md#trust-decisions-and-errors). One implementation
// serves both edges, so a pool the CLI refuses the API refuses too, with
// the same message. The configuration file's pools (cli/trust*.go) are
// checked with the same provider rules ([ProviderProblems]) and the same
// compiler options.
//
// It is an L2 service of its own, beside internal/clients: internal/trust
// is the read-only runtime registry on the exchange's hot path and never
// writes, policy and federation are the libraries it combines, and the
// CLI must not need the Connect edge to change a pool. It depends on
// storage, policy, federation and sts only; it knows nothing about
// Connect, HTTP or configuration (the limits it needs come in as
// [Limits]), and never logs a subject token.
//
// Rules every pool and provider obeys (checked on create and update; bad
// input gets an [sts.Invalid] error naming the field and changes
// nothing):
//
//   - Pool and provider IDs are lower-case letters, digits, '-' and '_',
//     starting with a letter or digit, at most 63 characters (the rule of
//     the configuration file): they appear in Google-style audiences
//     (pools/<pool>/providers/<provider>).
//   - A pool belongs to an existing organization; its principal binding,
//     when set, names a principal of that organization.
//   - Every CEL expression compiles with policy.Options{} — the options of
//     the token endpoint's registry and of the file — within its length
//     and static cost budget, with the right output type.
//   - max_token_lifetime is between 0 (the server default) and
//     keys.max_token_lifetime; scopes are non-empty tokens without spaces,
//     quotes or backslashes; display_name is at most 200 bytes of text.
//   - A provider's issuer (and jwks_uri) use https; plain http only with
//     federation.allow_loopback and only to a loopback address. It has at
//     least one audience, only supported algorithms, and an uploaded JWKS
//     (at most 256 KiB, as jwks_file) that parses.
//   - A pool trusting a shared multi-tenant issuer (policy.IsSharedIssuer)
//     has a condition: removing it is [sts.Invalid]; adding such a
//     provider to a pool without one is [sts.FailedPrecondition].
//
// An update that changes what a pool or provider trusts (trustchange.go)
// stores, in its own unit of work, the revocation row a deletion stores,
// ending what was exchanged under the old trust (docs/security.md A-62);
// [ApplyConfig] follows the same rule.
//
// Changes reach the token endpoint through the trust registry
// (internal/trust), which serves a snapshot refreshed every 5 s; the
// server hands [Service.SetOnChange] the registry's Refresh so a change
// made here applies on this node before the call returns.
package pools
