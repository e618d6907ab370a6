package pools

import (
	"maps"
	"slices"
	"strings"

	"github.com/opensts/sts/internal/storage"
)

// A change of what a pool or provider trusts ends what was exchanged under
// the old trust (docs/security.md A-62): the update stores, in its own
// unit of work, the row a deletion leaves (storage.PoolRevocation,
// storage.ProviderRevocation), so every token and refresh family
// exchanged through it up to the change ends, and the tokens exchanged
// after, under the new rules, live. A change is trust-deciding when it
// narrows whose assertions are believed or changes what identity they
// become; the functions below name the fields that did, in the API's
// names, and nothing else ends a token:
//
//   - Pool: condition, identity_claim, mapping.subject, mapping.groups and
//     mapping.attributes, on any change (a CEL expression's meaning cannot
//     be compared, so a rewrite counts as a change), principal_id when it
//     named a principal and now names another or none, and
//     organization_id on any change: a token of another organization's
//     pool is refused while the pool is away, and without a row it
//     would live again when the pool is moved back. Binding a pool that
//     had none widens nothing its earlier tokens hold.
//   - Provider: issuer and jwks_uri on any change, audiences when one is
//     removed (adding one ends nothing), and allow_missing_kid or
//     allow_multiple_audiences turned off (the looser tokens they let in
//     are no longer believed).
//
// Left out, with the reason: display_name; disabled (it suspends, A-34);
// a pool's scopes and audiences (what its tokens may hold and be
// for, judged per token rather than by a row, as A-52 does for scopes);
// max_token_lifetime and google_default_scopes (they shape later tokens
// only); allow_unauthenticated (it decides who may call the
// exchange, not which assertions are believed); a provider's uploaded
// jwks and algorithms (the same issuer's keys: an upstream rotation
// replaces them routinely, and ending every token at each rotation would
// make rotation an outage; a compromised upstream key is answered by
// deleting or disabling the provider); one_time_use (earlier exchanges
// were of believed assertions).

// poolTrustChanges names the trust-deciding fields in which want differs
// from old.
func poolTrustChanges(old, want storage.Pool) []string {
	return differing(
		field{"identity_claim", old.IdentityClaim != want.IdentityClaim},
		field{"condition", old.Condition != want.Condition},
		field{"mapping.subject", old.Mapping.Subject != want.Mapping.Subject},
		field{"mapping.groups", old.Mapping.Groups != want.Mapping.Groups},
		field{"mapping.attributes", !maps.Equal(old.Mapping.Attributes, want.Mapping.Attributes)},
		field{"principal_id", old.PrincipalID != "" && old.PrincipalID != want.PrincipalID},
		field{"organization_id", old.OrgID != want.OrgID},
	)
}

// providerTrustChanges names the trust-deciding fields in which want
// differs from old.
func providerTrustChanges(old, want storage.Provider) []string {
	removed := slices.ContainsFunc(old.Audiences, func(a string) bool { return !slices.Contains(want.Audiences, a) })
	return differing(
		field{"issuer", old.Issuer != want.Issuer},
		field{"jwks_uri", old.JWKSURI != want.JWKSURI},
		field{"audiences", removed},
		field{"allow_missing_kid", old.AllowMissingKID && !want.AllowMissingKID},
		field{"allow_multiple_audiences", old.AllowMultipleAudiences && !want.AllowMultipleAudiences},
	)
}

// trustEnded is a revocation row's reason and the suffix of an update
// event's detail when ended names trust-deciding fields: "pool trust
// changed (condition)" and "; earlier tokens ended (condition)". Field
// names only, never values.
func trustEnded(kind string, ended []string) (reason, detail string) {
	f := strings.Join(ended, ",")
	return kind + " trust changed (" + f + ")", "; earlier tokens ended (" + f + ")"
}
