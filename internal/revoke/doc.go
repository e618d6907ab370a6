// Package revoke serves RFC 7009 token revocation at POST /oauth2/revoke
// (access tokens by jti, refresh-token families, a client's own secret)
// and the public leak-report endpoint POST /credentials/revoke in the
// style of GitHub's. A 200 is sent only after the revocation is durably
// stored; a storage failure is 503 with Retry-After (docs/security.md T-63,
// T-64, D-04). It depends on clientauth, tokens, secret, ratelimit and
// storage, never on grants or introspect.
package revoke
