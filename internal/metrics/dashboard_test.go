package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

// These tests check the shipped Grafana dashboard and alert rules against the
// daemon's exposition: valid JSON/YAML, every expression parses as PromQL
// (through `promtool check rules`, since Debian's promtool 2.42 has no PromQL
// command), and every sae_scheduler_* name they use is one New registers.

const (
	dashboardPath  = "../../deploy/grafana/sae-scheduler.json"
	alertsPath     = "../../deploy/prometheus/alerts.yaml"
	alertTestsPath = "../../deploy/prometheus/alerts_test.yaml"
)

// exportedNames returns every sample name the daemon exposes, histograms
// expanded to _bucket, _sum and _count.
func exportedNames(t *testing.T) map[string]bool {
	names, _ := exportedNamesAndScheduleLevel(t)
	return names
}

// exportedNamesAndScheduleLevel is exportedNames plus the set of those names
// whose series carry a schedule label.
func exportedNamesAndScheduleLevel(t *testing.T) (names, scheduleLevel map[string]bool) {
	t.Helper()
	_, reg := loadSchedules(t, 2, 2)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	names, scheduleLevel = map[string]bool{}, map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		all := []string{n}
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			all = append(all, n+"_bucket", n+"_sum", n+"_count")
		}
		perSchedule := false
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				perSchedule = perSchedule || lp.GetName() == "schedule"
			}
		}
		for _, a := range all {
			names[a] = true
			scheduleLevel[a] = perSchedule
		}
	}
	return names, scheduleLevel
}

var metricToken = regexp.MustCompile(`\b` + Namespace + `_[a-zA-Z0-9_]*`)

// checkNames reports every sae_scheduler_* token of expr that the daemon does
// not export.
func checkNames(t *testing.T, where, expr string, exported map[string]bool) {
	t.Helper()
	for _, name := range metricToken.FindAllString(expr, -1) {
		if !exported[name] {
			t.Errorf("%s: metric %s is not exported by the daemon (expr %q)", where, name, expr)
		}
	}
}

// dashboard is the part of a Grafana dashboard these checks read.
type dashboard struct {
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int             `json:"id"`
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatalf("read dashboard: %v", err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	return d
}

// panelExpr is one target expression of a panel.
type panelExpr struct {
	where, expr string
}

func (d dashboard) exprs() []panelExpr {
	var out []panelExpr
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					out = append(out, panelExpr{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Grafana's template variables and their stand-ins for parsing.
var (
	grafanaDuration = map[string]string{
		"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
		"__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000",
	}
	grafanaVar = regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)(?::[a-zA-Z]+)?\}|\$([a-zA-Z0-9_]+)|\[\[([a-zA-Z0-9_]+)\]\]`)
)

// substitute replaces Grafana variables by values that keep the expression
// valid PromQL: durations for the built-in intervals, ".*" for the others
// (they appear inside regex matchers).
func substitute(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if d, ok := grafanaDuration[name]; ok {
			return d
		}
		return ".*"
	})
}

func TestSubstituteGrafanaVariables(t *testing.T) {
	tests := []struct{ in, want string }{
		{`rate(x{schedule=~"$schedule"}[$__rate_interval])`, `rate(x{schedule=~".*"}[5m])`},
		{`increase(x{a=~"${schedule:regex}"}[$__range])`, `increase(x{a=~".*"}[1h])`},
		{`rate(x[$__interval]) and y{a=~"[[schedule]]"}`, `rate(x[1m]) and y{a=~".*"}`},
	}
	for _, tt := range tests {
		if got := substitute(tt.in); got != tt.want {
			t.Errorf("substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDashboardUsesDatasourceVariable(t *testing.T) {
	d := loadDashboard(t)
	hasVar := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" {
			hasVar = true
		}
	}
	if !hasVar {
		t.Errorf("dashboard has no template variable `datasource` of type datasource")
	}
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatalf("read dashboard: %v", err)
	}
	// Every datasource reference, at any depth, must be the variable (or
	// Grafana's built-in annotation source): no UID of one Grafana install.
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "datasource" {
					checkDatasourceRef(t, path+"."+k, c)
				}
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", doc)
}

func checkDatasourceRef(t *testing.T, path string, ref any) {
	t.Helper()
	okUID := map[string]bool{"${datasource}": true, "$datasource": true, "-- Grafana --": true}
	switch r := ref.(type) {
	case string:
		if !okUID[r] {
			t.Errorf("%s = %q, want the ${datasource} variable", path, r)
		}
	case map[string]any:
		if uid, _ := r["uid"].(string); !okUID[uid] {
			t.Errorf("%s.uid = %q, want ${datasource}", path, uid)
		}
	}
}

func TestDashboardNamesOnlyExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	exported := exportedNames(t)
	exprs := d.exprs()
	if len(exprs) == 0 {
		t.Fatalf("dashboard has no panel expressions")
	}
	for _, e := range exprs {
		checkNames(t, e.where, e.expr, exported)
	}
	for _, v := range d.Templating.List {
		checkNames(t, "variable "+v.Name, v.Definition+string(v.Query), exported)
	}
}

func TestDashboardExpressionsParseWithPromtool(t *testing.T) {
	bin := promtool(t)
	d := loadDashboard(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range d.exprs() {
		// One recording rule per expression; the comment names the panel
		// so promtool's error can be traced back.
		expr, err := json.Marshal(substitute(e.expr)) // a JSON string is a valid YAML scalar
		if err != nil {
			t.Fatalf("encode %s: %v", e.where, err)
		}
		fmt.Fprintf(&b, "      # %s\n      - record: dashboard:expr_%d\n        expr: %s\n", e.where, i, expr)
	}
	rules := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(rules, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("write rules: %v", err)
	}
	out, err := exec.Command(bin, "check", "rules", rules).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules (dashboard expressions) = %v:\n%s\nrules:\n%s", err, out, b.String())
	}
}

// alertRules is the part of a Prometheus rule file these checks read.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadAlerts(t *testing.T) alertRules {
	t.Helper()
	raw, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatalf("read alerts: %v", err)
	}
	var r alertRules
	if err := yaml.Unmarshal(raw, &r); err != nil {
		t.Fatalf("alerts.yaml is not valid YAML: %v", err)
	}
	return r
}

func TestAlertsNameOnlyExportedMetrics(t *testing.T) {
	exported := exportedNames(t)
	n := 0
	for _, g := range loadAlerts(t).Groups {
		for _, r := range g.Rules {
			checkNames(t, "alert "+r.Alert, r.Expr, exported)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("alerts.yaml has no rules")
	}
}

func TestAlertsCarrySeveritySummaryDescriptionAndRunbook(t *testing.T) {
	runbook, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read runbook: %v", err)
	}
	_, scheduleLevel := exportedNamesAndScheduleLevel(t)
	severities := map[string]bool{"critical": true, "warning": true, "info": true}
	var names []string
	for _, g := range loadAlerts(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			names = append(names, r.Alert)
			if !severities[r.Labels["severity"]] {
				t.Errorf("%s: severity = %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: annotation %s is missing", r.Alert, a)
				}
			}
			anchor := "#runbook-" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], anchor) {
				t.Errorf("%s: runbook_url = %q, want it to end with %s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !strings.Contains(string(runbook), "### Runbook: "+r.Alert+"\n") {
				t.Errorf("%s: README.md has no section \"### Runbook: %s\"", r.Alert, r.Alert)
			}
			perSchedule := false
			for _, name := range metricToken.FindAllString(r.Expr, -1) {
				perSchedule = perSchedule || scheduleLevel[name]
			}
			if perSchedule && !strings.Contains(r.Annotations["description"], "$labels.schedule") {
				t.Errorf("%s: description does not name the schedule ($labels.schedule)", r.Alert)
			}
		}
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Errorf("alerts = %v, want at least the 8 of issue 6", names)
	}
}

func TestAlertRulesPassPromtool(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", alertsPath},
		{"test", "rules", alertTestsPath},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s = %v:\n%s", strings.Join(args, " "), err, out)
		}
	}
}
