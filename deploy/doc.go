// Package deploy holds the packaging of sts: the container recipe
// (Dockerfile here, .ko.yaml at the repository root) and the systemd unit
// (systemd/sts.service). It has no code; its tests check those files
// statically and build the static binary, so `go test ./...` catches a
// recipe that drifts from the binary it packages. docs/production.md
// describes how to use them.
package deploy
