// Package cors answers cross-origin (CORS) requests for the endpoints a
// browser application calls (docs/api.md, "Cross-origin requests").
//
// The credential-free documents (discovery metadata, the JWKS) are
// readable from any origin ([Public]). The client endpoints (token,
// revocation, UserInfo) answer their preflight for any well-formed origin
// ([Clients.Preflight]: it carries no body, so no client, and only lets a
// page send what it could send from anywhere without a victim's
// credential), and make the actual answer readable at the request's
// origin only once the handler has identified a client one of whose
// redirect URIs has that origin ([Allow], [AllowID]), judged from that
// one client's record. Nothing ever allows credentials (cookies): the
// browser pages and the admin API get no CORS at all.
//
// It is an L2 service over the storage contract, never importing an
// endpoint or the wiring.
package cors
