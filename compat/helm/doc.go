// Package helm holds the test that judges the Helm chart (deploy/helm/sts)
// with Helm itself: the helm command of helm.sh/helm/v4, built from the
// version this module pins, lints the chart and renders it as `helm
// template` does for several sets of values, and every rendered manifest
// is decoded strictly (an unknown or misspelt field fails) into its
// k8s.io/api type.
//
// It is a module of its own so that Helm and the Kubernetes modules it
// brings never enter the main module's build. CI runs it after the main
// test suite (.ci/run).
package helm
