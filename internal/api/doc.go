// Package api serves sts's Connect services — gitpod.v1 IdentityService
// and UserService (the Gitpod API) and the sts.v1 admin services — over
// Connect, gRPC and gRPC-Web, at / and under /api. It authenticates every
// request before its body is decoded, authorizes inside each method, and
// translates domain errors through one table (errors.go). It converts
// between generated messages and domain records here, so no other package
// depends on the generated code; it never imports config or a storage
// backend.
package api
