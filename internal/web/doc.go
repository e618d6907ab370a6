// Package web serves the pages people use in a browser: sign-in (a
// one-time link from `sts login-link`, or an upstream OpenID Connect
// provider of web.login.oidc), the /tokens page (personal access tokens,
// host authentication tokens, sessions) and sign-out.
//
// Upstream sign-in is the authorization code flow with PKCE S256, state
// and nonce, through golang.org/x/oauth2 and go-oidc; state, nonce and
// verifier stay in a short-lived cookie of the browser that started it,
// so a callback planted in another browser signs nobody in
// (docs/security.md T-89).
//
// Pages are html/template (every user string escaped) embedded with the
// binary, as are the only scripts they run: htmx 2.0.11 (vendored from
// npm) and static/app.js, both served from our origin under a strict
// Content-Security-Policy without 'unsafe-inline' (docs/security.md
// T-80). Every state-changing route sits behind
// http.CrossOriginProtection (T-81); pages are Cache-Control: no-store,
// so a secret shown once is never shown again by a reload, the back
// button or the page cache (T-84).
//
// Sessions live in storage (storage.SessionStore), so every replica
// accepts them; the cookie carries 32 random bytes and only their SHA-256
// is stored. A new session id is made at every sign-in (T-82), a session
// ends after web.session.idle_timeout without use or
// web.session.absolute_timeout after sign-in, and it is refused as soon as
// its principal is disabled or deleted (checked on every use); disabling
// the principal also deletes it, so re-enabling brings none back.
// Creating, regenerating or widening a PAT needs a sign-in younger than
// web.session.reauth_after ("sudo mode", reauth.go; T-139).
//
// Everything the page does to a token goes through the same services as
// the API and the CLI (internal/pat, internal/hosttoken), with the same
// audit trail: there is no second code path.
//
// [SignedIn] is the seam other endpoints (the authorization endpoint) use
// to ask who is signed in and to send a person to sign in.
package web
