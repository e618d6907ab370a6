package deploy_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/ststest"
)

// exposedMetrics scrapes a real server that has one pool and has answered
// one token request (so the token endpoints' label sets have children),
// and returns its metric families by name.
func exposedMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	s := ststest.NewTestServer(t, func(c *config.Config) {
		c.Organizations = []config.OrganizationConfig{{ID: "acme", Name: "Acme", Tier: "enterprise"}}
		c.Pools = []config.PoolConfig{{
			ID: "ci", Organization: "acme", Condition: `assertion.repository_owner == "acme"`,
			Mapping: config.MappingConfig{Subject: "assertion.sub"}, Scopes: []string{"read"}, MaxTokenLifetime: time.Hour,
			Providers: []config.ProviderConfig{{ID: "github", Issuer: "https://token.actions.githubusercontent.com", Audiences: []string{"sts"}}},
		}}
	})
	resp, err := s.Client.PostForm(s.URL+"/oauth2/token", url.Values{"grant_type": {"password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = s.Client.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// metricRE finds the metric names in a PromQL expression: sts' own, the
// database pool's and the runtime's. Label values (routes, codes) never
// start with these prefixes.
var metricRE = regexp.MustCompile(`\b(?:sts|go|process)_[a-z0-9_]+\b`)

// checkExpr reports what is wrong with expr: no metric, a metric the
// server does not expose, or unbalanced brackets.
func checkExpr(fams map[string]*dto.MetricFamily, expr string) []string {
	var problems []string
	names := metricRE.FindAllString(expr, -1)
	if len(names) == 0 {
		problems = append(problems, "names no metric")
	}
	for _, n := range names {
		if _, ok := fams[n]; ok {
			continue
		}
		found := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(n, suffix); ok {
				if f, ok := fams[base]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
					found = true
				}
			}
		}
		if !found {
			problems = append(problems, "names "+n+", which the server does not expose")
		}
	}
	for _, pair := range []string{"()", "{}", "[]"} {
		if strings.Count(expr, pair[:1]) != strings.Count(expr, pair[1:]) {
			problems = append(problems, "has unbalanced "+pair)
		}
	}
	return problems
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRulesUseExposedMetrics parses deploy/prometheus/alerts.yaml:
// every rule is a named alert with a severity and a summary, its for:
// is a duration, and its expression names only metrics a freshly started
// server already exposes (so no alert is blind until some first event).
// It also checks that the alerts docs/observability.md promises exist.
func TestAlertRulesUseExposedMetrics(t *testing.T) {
	data, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	fams := exposedMetrics(t)
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("rule %q: needs a unique alert name", r.Alert)
			}
			seen[r.Alert] = true
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: needs labels.severity and annotations.summary", r.Alert)
			}
			for _, p := range checkExpr(fams, r.Expr) {
				t.Errorf("%s: expression %s:\n%s", r.Alert, p, r.Expr)
			}
		}
	}
	for _, want := range []string{"StsHigh5xxRate", "StsNotReady", "StsSigningKeyNotRotated", "StsAuditEventsLost",
		"StsAuditQueueNearlyFull", "StsTokenEndpointSlow", "StsDatabasePoolSaturated"} {
		if !seen[want] {
			t.Errorf("alerts.yaml lacks %s", want)
		}
	}
	doc, err := os.ReadFile("../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range seen {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/observability.md does not describe %s", name)
		}
	}
}

// TestDashboardUsesExposedMetrics parses deploy/grafana/sts-dashboard.json:
// it is a dashboard with a uid and panels, and every panel's queries name
// only metrics the server exposes.
func TestDashboardUsesExposedMetrics(t *testing.T) {
	data, err := os.ReadFile("grafana/sts-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"` // rows
	}
	var d struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("sts-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard uid %q title %q with %d panels", d.UID, d.Title, len(d.Panels))
	}
	fams := exposedMetrics(t)
	queries := 0
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			for _, problem := range checkExpr(fams, tg.Expr) {
				t.Errorf("panel %q: query %s:\n%s", p.Title, problem, tg.Expr)
			}
		}
	}
	t.Logf("%d panels, %d queries checked against %d exposed metric families", len(d.Panels), queries, len(fams))
}

// TestObservabilityDocListsExposedMetrics: docs/observability.md's metric
// table names every sts_* family a real server exposes, and each name it
// lists is exposed, unless its row says it appears on first use or only
// with a setting (Redis).
func TestObservabilityDocListsExposedMetrics(t *testing.T) {
	data, err := os.ReadFile("../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(data), "## Metrics\n")
	table, _, _ = strings.Cut(table, "\n## ")
	name := regexp.MustCompile("`(sts_[a-z0-9_]+)`")
	documented := map[string]bool{}
	fams := exposedMetrics(t)
	for _, row := range strings.Split(table, "\n") {
		cells := strings.Split(row, "|")
		if len(cells) < 5 {
			continue
		}
		conditional := strings.Contains(row, "*on first use*") || strings.Contains(row, "(only with")
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			documented[m[1]] = true
			if fams[m[1]] == nil && !conditional {
				t.Errorf("docs/observability.md lists %s, which a server does not expose (mark it *on first use* if it appears later)", m[1])
			}
		}
	}
	for n := range fams {
		if strings.HasPrefix(n, "sts_") && !documented[n] {
			t.Errorf("the server exposes %s; docs/observability.md's metric table does not list it", n)
		}
	}
}
