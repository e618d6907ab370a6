// Package deploy holds the packaging of sts: the container recipe
// (Dockerfile here, .ko.yaml at the repository root) and the systemd unit
// (systemd/sts.service). It has no code; its tests check those files
// statically and build the static binary, so `go test ./...` catches a
// recipe that drifts from the binary it packages. The Prometheus alert
// rules (prometheus/alerts.yaml) and the Grafana dashboard
// (grafana/sts-dashboard.json) are checked against the metrics a real
// server exposes, and the Helm chart (helm/sts) is rendered and its
// objects checked. docs/production.md
// describes how to use them.
package deploy
