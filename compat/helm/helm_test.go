package helm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chart = "../../deploy/helm/sts"

// helmBinary builds the pinned helm command once per run.
func helmBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "helm")
	cmd := exec.Command("go", "build", "-o", bin, "helm.sh/helm/v4/cmd/helm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build helm: %v\n%s", err, out)
	}
	return bin
}

func helm(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.String(), err
	}
	return string(out), nil
}

// decode parses every manifest of a `helm template` output strictly into
// its k8s.io/api type and returns them by kind.
func decode(t *testing.T, out string) map[string]any {
	t.Helper()
	objs := map[string]any{}
	for _, doc := range strings.Split(out, "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("a rendered document is not YAML: %v\n%s", err, doc)
		}
		var obj any
		switch meta.Kind {
		case "":
			continue
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Service":
			obj = &corev1.Service{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Secret":
			obj = &corev1.Secret{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			t.Fatalf("the chart renders a %s, which this test does not know: add its type", meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Errorf("%s does not decode strictly into k8s.io/api: %v", meta.Kind, err)
		}
		objs[meta.Kind] = obj
	}
	return objs
}

func kinds(objs map[string]any) []string {
	var k []string
	for kind := range objs {
		k = append(k, kind)
	}
	slices.Sort(k)
	return k
}

// TestChartWithHelm: `helm lint --strict` passes; `helm template` refuses
// to render without the issuer or a master key, or with secretData beside
// existingSecret; the default values with a master key, and an existing
// Secret with one replica, render manifests that Kubernetes' own types
// accept, with the pod selector matching the pod's labels, probes on
// /livez and /readyz, and the master key read from the Secret, never
// written into the ConfigMap.
func TestChartWithHelm(t *testing.T) {
	bin := helmBinary(t)
	base := []string{"--set", "issuer=https://sts.example.com", "--set", "databaseDSN=postgres://sts@db/sts"}

	if out, err := helm(t, bin, append([]string{"lint", "--strict", chart, "--set", "existingSecret=sts-keys"}, base...)...); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no issuer":     {[]string{"--set", "masterKey=AAAA"}, "required"},
		"no master key": {[]string{"--set", "issuer=https://sts.example.com"}, "required"},
		"secretData beside existingSecret": {[]string{"--set", "issuer=https://sts.example.com", "--set", "existingSecret=sts-keys",
			"--set", "secretData.redis-url=redis://redis:6379/0"}, "secretData is set with existingSecret"},
	} {
		if out, err := helm(t, bin, append([]string{"template", "sts", chart}, c.args...)...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: helm template = %v %q, want an error saying %q", name, err, out, c.want)
		}
	}

	const key = "c2VjcmV0LW1hc3Rlci1rZXktb2YtdGhpcnR5LXR3by1ieXRlcyEh"
	out, err := helm(t, bin, append([]string{"template", "sts", chart, "--set", "masterKey=" + key}, base...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	objs := decode(t, out)
	if got := kinds(objs); !slices.Equal(got, []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"}) {
		t.Fatalf("rendered kinds %v", got)
	}
	if cm := objs["ConfigMap"].(*corev1.ConfigMap); strings.Contains(strings.Join(mapValues(cm.Data), "\n"), key) {
		t.Error("the master key is in the ConfigMap")
	}
	d := objs["Deployment"].(*appsv1.Deployment)
	checkDeployment(t, d, 3)

	out, err = helm(t, bin, append([]string{"template", "sts", chart, "--set", "existingSecret=sts-keys", "--set", "replicaCount=1",
		"--set", "podDisruptionBudget.enabled=false"}, base...)...)
	if err != nil {
		t.Fatalf("helm template (existing Secret): %v\n%s", err, out)
	}
	objs = decode(t, out)
	if got := kinds(objs); !slices.Equal(got, []string{"ConfigMap", "Deployment", "Service"}) {
		t.Fatalf("rendered kinds with an existing Secret %v", got)
	}
	checkDeployment(t, objs["Deployment"].(*appsv1.Deployment), 1)
}

// TestChartSecretSettingsWithHelm: secret settings from a values file,
// as docs/production.md shows them, through Helm's own YAML reading (YAML
// 1.1, where on is a boolean and 0123 octal): quoted keys and names reach
// the Secret and the container as written, secretRevision is the pod's
// sts/secret-revision annotation, and an unquoted number as a value fails
// the render, naming the setting but not the value.
func TestChartSecretSettingsWithHelm(t *testing.T) {
	bin := helmBinary(t)
	file := func(content string) string {
		f := filepath.Join(t.TempDir(), "secrets.yaml")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := []string{"template", "sts", chart, "--set", "issuer=https://sts.example.com", "--set", "masterKey=AAAA",
		"--set", "databaseDSN=postgres://sts@db/sts"}
	secrets := file(`secretData:
  redis-url: "redis://:redis-pw@redis:6379/0"
  "on": "x"
  "0123": "0123"
secretEnv:
  STS_RATE_LIMITS_REDIS_URL: redis-url
  "on": "0123"
`)
	out, err := helm(t, bin, append(base, "-f", secrets, "--set", "secretRevision=2")...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	objs := decode(t, out)
	s := objs["Secret"].(*corev1.Secret)
	if s.StringData["on"] != "x" || s.StringData["0123"] != "0123" || s.StringData["redis-url"] != "redis://:redis-pw@redis:6379/0" {
		t.Errorf("Secret stringData = %v, want on, 0123 and redis-url as written", mapKeys(s.StringData))
	}
	d := objs["Deployment"].(*appsv1.Deployment)
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env[e.Name] = e.ValueFrom.SecretKeyRef.Key
		}
	}
	if env["on"] != "0123" || env["STS_RATE_LIMITS_REDIS_URL"] != "redis-url" {
		t.Errorf("env from the Secret %v, want on from 0123 and STS_RATE_LIMITS_REDIS_URL from redis-url", env)
	}
	if got := d.Spec.Template.Annotations["sts/secret-revision"]; got != "2" {
		t.Errorf("pod annotation sts/secret-revision = %q, want 2", got)
	}

	out, err = helm(t, bin, append(base, "-f", file("secretData:\n  pin: 0777\n"))...)
	if err == nil || !strings.Contains(out, "secretData.pin is not a string") || strings.Contains(out, "511") {
		t.Errorf("an unquoted number in secretData: helm template = %v %q, want an error naming secretData.pin, not its value", err, out)
	}
}

func mapKeys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, replicas int32) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("replicas %v, want %d", d.Spec.Replicas, replicas)
	}
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Fatal("the Deployment has no selector")
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod's labels %v", k, v, d.Spec.Template.Labels)
		}
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/livez" ||
		c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v %+v, want /livez and /readyz", c.LivenessProbe, c.ReadinessProbe)
	}
	fromSecret := false
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			fromSecret = true
		}
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			fromSecret = true
		}
	}
	if !fromSecret {
		t.Error("the pod reads nothing from a Secret: where does the master key come from?")
	}
}

func mapValues(m map[string]string) []string {
	var v []string
	for _, s := range m {
		v = append(v, s)
	}
	return v
}
