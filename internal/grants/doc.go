// Package grants serves the token endpoint, POST /oauth2/token, and its
// Google (POST /v1/token) and Confluent (POST /sts/v1/oauth2/token)
// dialects. A Handler owns the numbered shared phases (method and content
// type, body limit, strict parsing, rate limits, client authentication,
// dispatch, write, audit) and each grant is its own type behind the Grant
// interface, like dex server/grants; tokenexchange.go is RFC 8693.
//
// It depends on trust, federation, policy and tokens (L2) and on the public
// pkg/rs for Credential Access Boundaries, never on server, cli or config:
// the request ID is read from the response header the server middleware
// set, and metrics, rate limits and audit arrive as small interfaces.
package grants
