// Package googleapi holds the compatibility test that judges sts's Google
// STS dialect (/v1/token, /v1/introspect, /v1/oauthtoken) with Google's
// generated Go client, google.golang.org/api/sts/v1.
//
// It is a module of its own because v0.170.0 is the newest
// google.golang.org/api whose sts/v1 still has Introspect and Oauthtoken,
// while the main module's dependencies (grpc among them) require a newer
// one, which minimal version selection would pick for the whole build.
// This module therefore does not require github.com/opensts/sts: the test
// builds the sts binary from the repository root and talks to it over
// loopback HTTP, as any Google client would. CI runs it after the main
// test suite (.ci/run).
package googleapi
