// Package clients is the lifecycle of OAuth clients — a service account's
// credentials at the token endpoint (docs/design.md#the-model) — shared by the admin API
// (api.ClientService) and the CLI (sts client …): validation, secret
// generation, the digest under the server pepper, storage and the audit
// trail. One implementation serves both edges, so a client the CLI refuses
// the API refuses too, with the same message.
//
// It is an L2 service of its own rather than part of clientauth or api:
// clientauth authenticates clients on the token endpoints' hot path and
// answers in OAuth errors, while registering a client is an admin action
// answered in domain errors ([sts.Error]); and the CLI must not need the
// Connect edge to register one. It depends on storage, oauth2, secret, sts
// and clientauth (to check a registered JWKS the way it will be read)
// only; it knows nothing about Connect, HTTP or configuration, and never
// logs or stores a secret.
//
// Rules every client obeys (checked on create and update; bad input gets
// an [sts.Invalid] error naming the field and changes nothing):
//
//   - Its principal is an enabled SERVICE_ACCOUNT of its organization.
//     client_credentials mints tokens as that principal, so a client for a
//     user, runner or environment would be a password for them that never
//     expires; people get long-lived credentials as PATs (at most 366
//     days) instead. Organization, principal and auth method never change.
//   - auth_method is client_secret_basic (the default), client_secret_post
//     or private_key_jwt. The secret methods get a generated sts_cs_
//     secret, returned once after the row and its audit event commit; only
//     its HMAC digest is stored. private_key_jwt takes exactly one of a
//     JWKS of public keys (clientauth.ValidateJWKS, at most 64 KiB) or an
//     https jwks_uri (plain http only to a loopback host, for development;
//     held to the fetching client's rule when Service.CheckJWKSURI is
//     set, and that client still judges each address it dials).
//   - grant_types holds at least one of the token endpoint's grants
//     (client_credentials, refresh_token, token-exchange, jwt-bearer).
//   - Scopes are RFC 6749 scope-tokens of at most 128 bytes, audiences
//     1–512 bytes without spaces or control characters, pools 1–128 bytes
//     of letters, digits, '.', '_' and '-' (pools are not required to
//     exist yet: they are often applied later from configuration). Each
//     list holds at most 100 entries; duplicates are dropped.
//   - name is at most 200 bytes without control characters.
package clients
