// Package cors answers cross-origin (CORS) requests for the endpoints a
// browser application calls (docs/api.md, "Cross-origin requests").
//
// The credential-free documents (discovery metadata, the JWKS) are
// readable from any origin ([Public]). The client endpoints (token,
// revocation, UserInfo) answer only the origins of the clients' registered
// redirect URIs ([Origins]): a preflight is answered for an origin some
// enabled client registered, and the actual answer is readable there only
// once its handler has identified a client that registered that origin
// ([Allow]). Nothing ever allows credentials (cookies): the browser pages
// and the admin API get no CORS at all.
//
// It is an L2 service over the storage contract, never importing an
// endpoint or the wiring.
package cors
