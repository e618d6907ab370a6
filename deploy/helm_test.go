package deploy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"

	"go.yaml.in/yaml/v3"

	"github.com/opensts/sts/internal/cli"
)

// The chart is rendered here with text/template and the handful of Helm
// and Sprig functions its templates use (no helm binary or module is
// needed); its templates must stay within this set, which real Helm
// provides with the same meaning. compat/helm renders it with Helm itself.

const chartDir = "helm/sts"

// helmFuncs are Helm's (include, required, fail, toYaml) and Sprig's
// (default, kindIs, quote, indent, nindent, trunc, trimSuffix, contains,
// sha256sum) functions as the chart uses them.
func helmFuncs(t *template.Template) template.FuncMap {
	indent := func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	}
	return template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b bytes.Buffer
			err := t.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"required": func(msg string, v any) (any, error) {
			if v == nil || v == "" {
				return nil, errors.New(msg)
			}
			return v, nil
		},
		"fail": func(msg string) (string, error) { return "", errors.New(msg) },
		"toYaml": func(v any) (string, error) {
			out, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(out), "\n"), err
		},
		"default": func(def any, v ...any) any {
			if len(v) == 0 || v[0] == nil || reflect.ValueOf(v[0]).IsZero() {
				return def
			}
			return v[0]
		},
		"kindIs":     func(kind string, v any) bool { return reflect.ValueOf(v).Kind().String() == kind },
		"quote":      func(v any) string { return fmt.Sprintf("%q", fmt.Sprint(v)) },
		"indent":     indent,
		"nindent":    func(n int, s string) string { return "\n" + indent(n, s) },
		"trunc":      func(n int, s string) string { return s[:min(n, len(s))] },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"sha256sum": func(s string) string {
			h := sha256.Sum256([]byte(s))
			return hex.EncodeToString(h[:])
		},
	}
}

// renderChart renders every template of the chart with values.yaml
// overlaid by override (top-level keys), as `helm template <release>`
// would, and returns the YAML documents by kind. It returns the error of
// the first template that fails.
func renderChart(t *testing.T, release string, override map[string]any) (map[string]map[string]any, error) {
	t.Helper()
	var chart map[string]any
	readYAML(t, filepath.Join(chartDir, "Chart.yaml"), &chart)
	var values map[string]any
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &values)
	maps.Copy(values, override)

	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v", err)
	}
	root := template.New("chart").Option("missingkey=zero")
	root.Funcs(helmFuncs(root))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.New("sts/templates/" + filepath.Base(f)).Parse(string(src)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	data := map[string]any{
		"Values":  values,
		"Release": map[string]any{"Name": release, "Namespace": "default", "Service": "Helm"},
		"Chart": map[string]any{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"],
			"Description": chart["description"]},
		"Template": map[string]any{"BasePath": "sts/templates"},
	}
	docs := map[string]map[string]any{}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") {
			continue
		}
		var b bytes.Buffer
		if err := root.ExecuteTemplate(&b, "sts/templates/"+name, data); err != nil {
			return nil, err
		}
		out := strings.ReplaceAll(b.String(), "<no value>", "") // as Helm does
		for _, part := range strings.Split(out, "\n---") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(part), &doc); err != nil {
				t.Fatalf("%s renders invalid YAML: %v\n%s", name, err, part)
			}
			if doc == nil {
				continue
			}
			kind, _ := doc["kind"].(string)
			if _, dup := docs[kind]; dup || kind == "" {
				t.Fatalf("%s: kind %q missing or rendered twice", name, kind)
			}
			docs[kind] = doc
		}
	}
	return docs, nil
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dig walks m along keys (map keys, or list indexes as ints).
func dig(t *testing.T, m any, keys ...any) any {
	t.Helper()
	cur := m
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			mm, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not a map: %v", k, cur)
			}
			cur = mm[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at [%d]: not a list that long: %v", k, cur)
			}
			cur = l[k]
		}
	}
	return cur
}

// byName finds the element of a list of maps whose "name" is name.
func byName(t *testing.T, list any, name string) map[string]any {
	t.Helper()
	l, _ := list.([]any)
	for _, e := range l {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	t.Fatalf("no %q in %v", name, list)
	return nil
}

var testValues = map[string]any{
	"issuer":       "https://sts.example.com",
	"masterKey":    "bWFzdGVyLWtleS1mb3ItdGhlLXJlbmRlci10ZXN0Cg==",
	"databaseDSN":  "postgres://sts:pw@db:5432/sts",
	"replicaCount": 5,
}

// TestHelmChart renders deploy/helm/sts and checks the objects a team
// relies on: N replicas from the values, probes on /livez and /readyz, a
// non-root pod with a read-only root file system and no privilege
// escalation, the master key mounted as a file of the Secret (never an
// environment variable), the DSN from the Secret, a PodDisruptionBudget,
// a Service selecting the pods, and an sts.yaml the real `sts config
// check` accepts.
func TestHelmChart(t *testing.T) {
	docs, err := renderChart(t, "prod", testValues)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} {
		if docs[kind] == nil {
			t.Fatalf("no %s rendered; have %v", kind, slices.Collect(maps.Keys(docs)))
		}
	}
	dep := docs["Deployment"]
	if got := dig(t, dep, "spec", "replicas"); got != 5 {
		t.Errorf("replicas = %v, want the value 5", got)
	}
	pod := dig(t, dep, "spec", "template", "spec").(map[string]any)
	podSC := pod["securityContext"].(map[string]any)
	if podSC["runAsNonRoot"] != true || podSC["runAsUser"] == 0 {
		t.Errorf("pod securityContext = %v, want non-root", podSC)
	}
	c := dig(t, pod, "containers", 0).(map[string]any)
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("container securityContext = %v", sc)
	}
	if caps := dig(t, sc, "capabilities", "drop"); !reflect.DeepEqual(caps, []any{"ALL"}) {
		t.Errorf("capabilities drop = %v, want ALL", caps)
	}
	if p := dig(t, c, "livenessProbe", "httpGet", "path"); p != "/livez" {
		t.Errorf("liveness probe path = %v", p)
	}
	if p := dig(t, c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe path = %v", p)
	}
	if r := dig(t, c, "resources", "limits", "memory"); r == nil {
		t.Errorf("no memory limit")
	}
	if img := c["image"]; img != "registry.example/sts:0.1.0" {
		t.Errorf("image = %v, want the appVersion tag", img)
	}

	// The master key: a file of the Secret volume, mode 0400, never env.
	secretName := dig(t, docs["Secret"], "metadata", "name")
	vol := byName(t, pod["volumes"], "secret")
	if dig(t, vol, "secret", "secretName") != secretName || dig(t, vol, "secret", "defaultMode") != 0o400 {
		t.Errorf("secret volume = %v", vol)
	}
	mount := byName(t, c["volumeMounts"], "secret")
	if mount["mountPath"] != "/etc/sts/secret" || mount["readOnly"] != true {
		t.Errorf("secret mount = %v", mount)
	}
	for _, e := range c["env"].([]any) {
		e := e.(map[string]any)
		if strings.Contains(strings.ToUpper(fmt.Sprint(e["name"])), "MASTER") {
			t.Errorf("the master key reaches the container by environment: %v", e)
		}
		if ref, _ := dig(t, e, "valueFrom").(map[string]any); e["name"] == "STS_STORAGE_DSN" &&
			(ref == nil || dig(t, ref, "secretKeyRef", "name") != secretName) {
			t.Errorf("STS_STORAGE_DSN = %v, want it from the Secret", e)
		}
	}
	if docs["Secret"]["stringData"].(map[string]any)["master-key"] != testValues["masterKey"] {
		t.Errorf("Secret master-key not from the values")
	}

	// The ConfigMap holds no secret, and the real loader accepts it.
	stsYAML := dig(t, docs["ConfigMap"], "data", "sts.yaml").(string)
	if strings.Contains(stsYAML, "pw@") || strings.Contains(stsYAML, testValues["masterKey"].(string)) {
		t.Errorf("sts.yaml in the ConfigMap carries a secret:\n%s", stsYAML)
	}
	file := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(file, []byte(stsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STS_STORAGE_DSN", testValues["databaseDSN"].(string))
	var stdout, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"config", "check", "--config", file}, &stdout, &stderr); code != 0 {
		t.Errorf("sts config check of the chart's sts.yaml = %d: %s\n%s", code, stderr.String(), stsYAML)
	}
	for _, want := range []string{"issuer: https://sts.example.com", "type: postgres", "master_key_file: /etc/sts/secret/master-key"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, stdout.String())
		}
	}

	pdb := docs["PodDisruptionBudget"]
	if got := dig(t, pdb, "spec", "minAvailable"); got != 1 {
		t.Errorf("PDB minAvailable = %v, want 1", got)
	}
	selector := dig(t, dep, "spec", "selector", "matchLabels")
	if !reflect.DeepEqual(dig(t, pdb, "spec", "selector", "matchLabels"), selector) ||
		!reflect.DeepEqual(dig(t, docs["Service"], "spec", "selector"), selector) {
		t.Errorf("PDB and Service must select the Deployment's pods %v", selector)
	}
	labels := dig(t, dep, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range selector.(map[string]any) {
		if labels[k] != v {
			t.Errorf("pod labels %v do not match the selector %v", labels, selector)
		}
	}
	if dig(t, docs["Service"], "spec", "ports", 0, "targetPort") != "http" {
		t.Errorf("service targetPort is not the container's http port")
	}
}

// TestHelmChartExistingSecret: with existingSecret the chart creates no
// Secret and points the volume and the DSN at the named one; without an
// issuer, or without secret material, rendering fails with the reason.
func TestHelmChartExistingSecret(t *testing.T) {
	v := map[string]any{"issuer": "https://sts.example.com", "existingSecret": "sts-keys"}
	docs, err := renderChart(t, "sts", v)
	if err != nil {
		t.Fatal(err)
	}
	if docs["Secret"] != nil {
		t.Errorf("a Secret was rendered beside existingSecret")
	}
	pod := dig(t, docs["Deployment"], "spec", "template", "spec")
	if got := dig(t, byName(t, pod.(map[string]any)["volumes"], "secret"), "secret", "secretName"); got != "sts-keys" {
		t.Errorf("secret volume uses %v, want sts-keys", got)
	}
	if got := dig(t, docs["Deployment"], "metadata", "name"); got != "sts" {
		t.Errorf("name = %v: a release named like the chart keeps its name", got)
	}

	for name, vals := range map[string]map[string]any{
		"issuer":    {"existingSecret": "sts-keys"},
		"masterKey": {"issuer": "https://sts.example.com", "databaseDSN": "postgres://db/sts"},
	} {
		if _, err := renderChart(t, "sts", vals); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: render error %v, want one naming it", name, err)
		}
	}
}

// TestHelmChartSecretEnv: a setting that carries a secret (a Redis URL
// with its password, an OIDC sign-in client secret) reaches sts from the
// Secret, never from config:, which is a ConfigMap (docs/security.md
// T-182): secretData adds keys to the chart's Secret, secretEnv maps keys
// of that Secret (or of existingSecret) to environment variables, read as
// STS_* settings or named as ${VAR} in config:.
func TestHelmChartSecretEnv(t *testing.T) {
	const redisURL = "redis://:redis-pw@redis:6379/0"
	v := maps.Clone(testValues)
	v["secretData"] = map[string]any{"redis-url": redisURL}
	v["secretEnv"] = map[string]any{"STS_RATE_LIMITS_REDIS_URL": "redis-url"}
	docs, err := renderChart(t, "prod", v)
	if err != nil {
		t.Fatal(err)
	}
	secretName := dig(t, docs["Secret"], "metadata", "name")
	if got := dig(t, docs["Secret"], "stringData", "redis-url"); got != redisURL {
		t.Errorf("Secret redis-url = %v, want secretData's value", got)
	}
	c := dig(t, docs["Deployment"], "spec", "template", "spec", "containers", 0).(map[string]any)
	env := byName(t, c["env"], "STS_RATE_LIMITS_REDIS_URL")
	if dig(t, env, "valueFrom", "secretKeyRef", "name") != secretName || dig(t, env, "valueFrom", "secretKeyRef", "key") != "redis-url" {
		t.Errorf("STS_RATE_LIMITS_REDIS_URL = %v, want it from the Secret's redis-url", env)
	}
	stsYAML := dig(t, docs["ConfigMap"], "data", "sts.yaml").(string)
	if strings.Contains(stsYAML, "redis-pw") {
		t.Errorf("sts.yaml in the ConfigMap carries the Redis password:\n%s", stsYAML)
	}
	// The real loader takes the URL from that variable.
	file := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(file, []byte(stsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STS_STORAGE_DSN", testValues["databaseDSN"].(string))
	t.Setenv("STS_RATE_LIMITS_REDIS_URL", redisURL)
	var stdout, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"config", "check", "--config", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("sts config check = %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "redis_url: REDACTED") || strings.Contains(stdout.String(), "redis-pw") {
		t.Errorf("effective configuration does not take redis_url from the environment, or prints it:\n%s", stdout.String())
	}

	// With existingSecret the variables name that Secret's keys.
	docs, err = renderChart(t, "sts", map[string]any{"issuer": "https://sts.example.com", "existingSecret": "sts-keys",
		"secretEnv": map[string]any{"OIDC_CLIENT_SECRET": "oidc-client-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	c = dig(t, docs["Deployment"], "spec", "template", "spec", "containers", 0).(map[string]any)
	env = byName(t, c["env"], "OIDC_CLIENT_SECRET")
	if dig(t, env, "valueFrom", "secretKeyRef", "name") != "sts-keys" || dig(t, env, "valueFrom", "secretKeyRef", "key") != "oidc-client-secret" {
		t.Errorf("OIDC_CLIENT_SECRET = %v, want it from sts-keys' oidc-client-secret", env)
	}
}

// TestHelmChartSecretNamesKeepTheirType: a secretData key or a secretEnv
// name that YAML reads as another type (true, null, 1e3, 0123: all valid
// Secret keys) reaches the Secret and the container as written, a string,
// not as a boolean, a null or a number the API server refuses or renames
// (docs/security.md T-182).
func TestHelmChartSecretNamesKeepTheirType(t *testing.T) {
	for _, name := range []string{"true", "null", "1e3", "0123"} {
		v := maps.Clone(testValues)
		v["secretData"] = map[string]any{name: "x"}
		v["secretEnv"] = map[string]any{name: name}
		docs, err := renderChart(t, "prod", v)
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		data, _ := dig(t, docs["Secret"], "stringData").(map[string]any)
		if data[name] != "x" {
			t.Errorf("secretData key %q: stringData = %v, want %q: x", name, docs["Secret"]["stringData"], name)
		}
		found := false
		for _, e := range dig(t, docs["Deployment"], "spec", "template", "spec", "containers", 0, "env").([]any) {
			e := e.(map[string]any)
			if e["name"] == name {
				found = dig(t, e, "valueFrom", "secretKeyRef", "key") == name
			}
		}
		if !found {
			t.Errorf("secretEnv name %q: no variable of that name (string) from key %q in %v", name, name,
				dig(t, docs["Deployment"], "spec", "template", "spec", "containers", 0, "env"))
		}
	}
}

// TestHelmChartSecretDataWithExistingSecret: the chart creates no Secret
// beside existingSecret, so secretData there would be dropped and the
// pods fail on a missing key; rendering fails instead, saying where the
// keys go.
func TestHelmChartSecretDataWithExistingSecret(t *testing.T) {
	_, err := renderChart(t, "sts", map[string]any{"issuer": "https://sts.example.com", "existingSecret": "sts-keys",
		"secretData": map[string]any{"redis-url": "redis://:redis-pw@redis:6379/0"},
		"secretEnv":  map[string]any{"STS_RATE_LIMITS_REDIS_URL": "redis-url"}})
	if err == nil || !strings.Contains(err.Error(), "secretData") || !strings.Contains(err.Error(), "existingSecret") {
		t.Errorf("secretData with existingSecret: err = %v, want a render error naming secretData and existingSecret", err)
	}
	if err != nil && strings.Contains(err.Error(), "redis-pw") {
		t.Errorf("the render error carries the secret: %v", err)
	}
}

// TestHelmChartSecretRevisionRollsPods: sts reads the Secret's settings
// only at start (environment variables), and the pod template carries
// nothing derived from the Secret (no hash of a secret in an annotation),
// so a changed secret alone rolls no pod; bumping secretRevision changes
// the pod template, and helm upgrade rolls the pods onto the new value.
func TestHelmChartSecretRevisionRollsPods(t *testing.T) {
	render := func(revision any, redisURL string) (string, map[string]any) {
		t.Helper()
		v := maps.Clone(testValues)
		v["secretData"] = map[string]any{"redis-url": redisURL}
		v["secretEnv"] = map[string]any{"STS_RATE_LIMITS_REDIS_URL": "redis-url"}
		if revision != nil {
			v["secretRevision"] = revision
		}
		docs, err := renderChart(t, "prod", v)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := dig(t, docs["Deployment"], "spec", "template")
		out, err := yaml.Marshal(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		annotations, _ := dig(t, tmpl, "metadata", "annotations").(map[string]any)
		return string(out), annotations
	}
	const oldURL, newURL = "redis://:old-pw@redis:6379/0", "redis://:new-pw@redis:6379/0"
	before, _ := render(nil, oldURL)
	if rotated, _ := render(nil, newURL); rotated != before {
		t.Errorf("the pod template changed with a secret value alone: something derived from the Secret is in it:\n%s\n%s", before, rotated)
	}
	bumped, annotations := render(2, newURL) // --set secretRevision=2 is a number
	if bumped == before {
		t.Errorf("the pod template is the same after secretRevision was set: helm upgrade rolls no pod, each keeps the old secret")
	}
	if got := annotations["sts/secret-revision"]; got != "2" {
		t.Errorf("pod annotation sts/secret-revision = %v, want \"2\" (annotations %v)", got, annotations)
	}
	if again, _ := render("3", newURL); again == bumped {
		t.Errorf("the pod template is the same after secretRevision went from 2 to 3")
	}
}

// TestHelmChartSecretValuesAreStrings: a secret value YAML reads as a
// number or a boolean (0123 in a values file is 83, 12345678901234567890
// a float) would reach the Secret changed; a secretEnv key likewise names
// another key. Rendering fails instead, naming the setting (not its
// value) and how to pass it as a string.
func TestHelmChartSecretValuesAreStrings(t *testing.T) {
	for name, over := range map[string]map[string]any{
		"secretData.pin":      {"secretData": map[string]any{"pin": 83}},
		"secretData.token":    {"secretData": map[string]any{"token": 1.2345678901234567e+19}},
		"secretData.flag":     {"secretData": map[string]any{"flag": true}},
		"secretEnv.STS_PIN":   {"secretEnv": map[string]any{"STS_PIN": 83}},
		"secretEnv.STS_TOKEN": {"secretEnv": map[string]any{"STS_TOKEN": 1000.0}},
		"secretData (a list)": {"secretData": map[string]any{"pins": []any{"a"}}},
	} {
		v := maps.Clone(testValues)
		maps.Copy(v, over)
		_, err := renderChart(t, "prod", v)
		setting, _, _ := strings.Cut(name, " ")
		if setting == "secretData" {
			setting = "secretData.pins"
		}
		if err == nil || !strings.Contains(err.Error(), setting+" is not a string") || !strings.Contains(err.Error(), "--set-string") {
			t.Errorf("%s: err = %v, want a render error saying %q is not a string, and --set-string", name, err, setting)
		}
	}
	// Strings render, whatever they look like.
	v := maps.Clone(testValues)
	v["secretData"] = map[string]any{"pin": "0123", "token": "12345678901234567890"}
	v["secretEnv"] = map[string]any{"STS_PIN": "0123"}
	docs, err := renderChart(t, "prod", v)
	if err != nil {
		t.Fatal(err)
	}
	if got := dig(t, docs["Secret"], "stringData", "pin"); got != "0123" {
		t.Errorf("stringData.pin = %v, want \"0123\"", got)
	}
	if got := dig(t, docs["Secret"], "stringData", "token"); got != "12345678901234567890" {
		t.Errorf("stringData.token = %v, want \"12345678901234567890\"", got)
	}
}
