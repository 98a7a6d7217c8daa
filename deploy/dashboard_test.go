package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testdaemon"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/browser"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

const dashboardFile = "grafana/vantage.json"

// prometheusGenerated are series Prometheus itself makes from alerting
// rules; no exporter exposes them.
var prometheusGenerated = map[string]bool{"ALERTS": true, "ALERTS_FOR_STATE": true}

type dashboard struct {
	Requires    []map[string]any `json:"__requires"`
	Inputs      []map[string]any `json:"__inputs"`
	UID         string           `json:"uid"`
	Title       string           `json:"title"`
	Schema      int              `json:"schemaVersion"`
	Panels      []panel          `json:"panels"`
	Annotations struct {
		List []struct {
			Datasource map[string]any `json:"datasource"`
			Expr       string         `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource map[string]any           `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Repeat     string                   `json:"repeat"`
	Targets    []struct {
		Datasource map[string]any `json:"datasource"`
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Definition string         `json:"definition"`
	Datasource map[string]any `json:"datasource"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not valid dashboard JSON: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows' nested panels.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// exprs lists every PromQL expression with where it is, for messages.
func (d dashboard) exprs() map[string]string {
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out[fmt.Sprintf("variable %q", v.Name)] = v.Definition
			if q, ok := v.Query.(map[string]any); ok {
				out[fmt.Sprintf("variable %q query", v.Name)], _ = q["query"].(string)
			}
		}
	}
	for i, a := range d.Annotations.List {
		if a.Expr != "" {
			out[fmt.Sprintf("annotation %d", i)] = a.Expr
		}
	}
	return out
}

func isDatasourceVar(ds map[string]any) bool {
	return ds["type"] == "prometheus" && ds["uid"] == "${datasource}"
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a stable import", d.UID, d.Title)
	}
	if d.Schema < 36 || d.Schema > 41 {
		t.Errorf("schemaVersion %d, want a current one (~39)", d.Schema)
	}
	raw, _ := os.ReadFile(dashboardFile)
	if strings.Contains(string(raw), "${DS_") {
		t.Errorf("the dashboard uses an import-time ${DS_...} input; use the ${datasource} variable so file provisioning works too")
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.Query != "prometheus" {
		t.Errorf("variable datasource = %+v, want type datasource, query prometheus", v)
	}
	for _, name := range []string{"location", "check", "path", "node"} {
		v, ok := vars[name]
		if !ok {
			t.Errorf("variable %s is missing", name)
			continue
		}
		if v.Type != "query" || !isDatasourceVar(v.Datasource) {
			t.Errorf("variable %s: type %q datasource %v, want a query on ${datasource}", name, v.Type, v.Datasource)
		}
		if !strings.HasPrefix(v.Definition, "label_values(vantage_check_up") || !strings.HasSuffix(v.Definition, ", "+name+")") {
			t.Errorf("variable %s: definition %q, want label_values(vantage_check_up..., %s)", name, v.Definition, name)
		}
	}

	ids := map[int]string{}
	var queried []string
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if !isDatasourceVar(p.Datasource) {
			t.Errorf("panel %q: datasource %v, want {type: prometheus, uid: ${datasource}}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !isDatasourceVar(tg.Datasource) {
				t.Errorf("panel %q target %s: datasource %v", p.Title, tg.RefID, tg.Datasource)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s: empty expr", p.Title, tg.RefID)
			}
			queried = append(queried, metricNames(tg.Expr)...)
		}
		// Panels about checks must follow the check variables.
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "vantage_check_") && !strings.Contains(tg.Expr, `node=~"$node"`) {
				t.Errorf("panel %q: %s ignores the node variable", p.Title, tg.Expr)
			}
		}
	}
	// The panels the issue asks for.
	for _, m := range []string{"vantage_check_duration_quantile_seconds", "vantage_check_success_ratio",
		"vantage_check_up", "vantage_node_slowdown_ratio", "vantage_http_phase_seconds",
		"vantage_browser_requests_total", "vantage_browser_request_duration_seconds_bucket",
		"vantage_alerts", "ALERTS", "vantage_notifications_total", "vantage_notification_queue_length",
		"vantage_scheduler_start_delay_seconds_bucket", "vantage_scheduler_skipped_runs_total"} {
		if !slices.Contains(queried, m) {
			t.Errorf("no panel queries %s", m)
		}
	}
}

// TestDashboardMetricsExist checks that every metric the dashboard queries
// is exposed by vantage. Names come from three sources, all real code:
//
//   - the /metrics exposition of a real daemon probing the demo shop
//     (HTTP, TCP and DNS checks over every node, alert rules and a webhook
//     notifier), scraped once quantiles and node slowdown are computed;
//   - browser series, from metrics.New fed one browser observation: the
//     exact collector the daemon uses, without making the test depend on
//     Chromium's start-up time (probe/browser's own tests run Chromium);
//   - counters that only appear after an event (skipped runs), from the
//     descriptors probe.NewScheduler registers.
//
// ALERTS and ALERTS_FOR_STATE are Prometheus-generated and allowed.
func TestDashboardMetricsExist(t *testing.T) {
	d := loadDashboard(t)
	have := daemonMetricNames(t)
	for n := range browserMetricNames(t) {
		have[n] = true
	}
	for n := range registeredNames(t) {
		have[n] = true
	}
	// Guard against an empty source making every check pass.
	for _, must := range []string{"vantage_check_up", "vantage_check_duration_quantile_seconds", "vantage_node_slowdown_ratio",
		"vantage_browser_requests_total", "vantage_scheduler_skipped_runs_total", "vantage_notification_queue_length"} {
		if !have[must] {
			t.Fatalf("%s is not among the exposed names; the test fixture is broken", must)
		}
	}

	exprs := d.exprs()
	where := slices.Sorted(maps.Keys(exprs))
	checked := 0
	for _, w := range where {
		for _, name := range metricNames(exprs[w]) {
			checked++
			if !have[name] && !prometheusGenerated[name] {
				t.Errorf("%s queries %s, which vantage does not expose (expression: %s)", w, name, exprs[w])
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d metric references found; is the extractor broken?", checked)
	}
}

// familyNames adds the series names of parsed families: histograms and
// summaries also have _bucket/_sum/_count series.
func familyNames(fams map[string]*dto.MetricFamily, into map[string]bool) {
	for name, f := range fams {
		if len(f.GetMetric()) == 0 {
			continue
		}
		into[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			into[name+"_bucket"], into[name+"_sum"], into[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			into[name+"_sum"], into[name+"_count"] = true, true
		}
	}
}

func daemonMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	shop := testdaemon.Shop(t)
	recv := testdaemon.Receiver(t)

	cfgFile := filepath.Join(t.TempDir(), "vantage.yaml")
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: time.Second, Timeout: 800 * time.Millisecond, WebhookURL: recv.URL()})
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dm := testdaemon.Start(t, daemon.Options{
		ConfigFile: cfgFile, StoragePath: t.TempDir(), Logger: log, EvalInterval: 200 * time.Millisecond,
		Notifiers: kinds.Notifiers(),
	})

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	url := dm.URL + "/metrics"
	// Wait for the series that need several runs: quantiles, node slowdown,
	// certificate expiry, the notification queue gauge.
	wait := []string{"vantage_check_duration_quantile_seconds", "vantage_node_slowdown_ratio",
		"vantage_tls_cert_not_after_timestamp_seconds", "vantage_notification_queue_length", "vantage_http_phase_seconds"}
	var names map[string]bool
	deadline := time.Now().Add(30 * time.Second)
	for {
		names = scrapeNames(t, client, url)
		missing := []string{}
		for _, w := range wait {
			if !names[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never exposed %v", missing)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func scrapeNames(t *testing.T, c *http.Client, url string) map[string]bool {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]bool{}
	familyNames(fams, out)
	return out
}

// browserMetricNames feeds one browser run through the daemon's metrics
// collector and returns the names it exposes.
func browserMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Checks = []checks.Check{{Name: "web-checkout", Type: "browser", Spec: &browser.Config{}}}
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	c := metrics.New(cfg)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.Observe(&probe.Observation{Target: &probe.Target{Key: "web-checkout/direct/", Check: &cfg.Checks[0], Path: p}, Up: true,
		Outcome: &probe.Outcome{Result: probe.Success, Duration: time.Second,
			Steps: []probe.StepResult{{Name: "01-navigate", Result: probe.Success, Duration: 300 * time.Millisecond,
				Navigation: &probe.NavTiming{TTFB: 3 * time.Millisecond, DOMContentLoaded: 200 * time.Millisecond, Load: 250 * time.Millisecond}}},
			Requests: []probe.Request{{Domain: "www.shop.test", Result: "ok", Status: 200, Duration: 10 * time.Millisecond}},
		}})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "vantage_browser_") {
			m[f.GetName()] = f
		}
	}
	out := map[string]bool{}
	familyNames(m, out)
	return out
}

// describingRegisterer records the names of the metrics registered with it.
type describingRegisterer struct {
	names map[string]prometheus.ValueType
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r describingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = 0
		}
	}
	return nil
}

func (r describingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r describingRegisterer) Unregister(prometheus.Collector) bool { return true }

// registeredNames are the scheduler's metrics, which include counters that
// only get a series once something happens (a skipped run).
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	r := describingRegisterer{names: map[string]prometheus.ValueType{}}
	probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), Registerer: r})
	out := map[string]bool{}
	for n := range r.names {
		out[n] = true
	}
	if !out["vantage_scheduler_start_delay_seconds"] {
		t.Fatalf("scheduler registered %v; descriptor parsing broke", r.names)
	}
	// Histograms' series names.
	out["vantage_scheduler_start_delay_seconds_bucket"] = true
	out["vantage_scheduler_start_delay_seconds_sum"] = true
	out["vantage_scheduler_start_delay_seconds_count"] = true
	return out
}

// Every expression parses as PromQL, checked with promtool when installed
// (make test installs it): each becomes a recording rule with Grafana's
// variables replaced by plausible values.
func TestDashboardPromQLParses(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool", "prometheus")
	d := loadDashboard(t)
	repl := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$__interval", "30s",
		"${datasource}", "x", "$location", ".*", "$check", ".*", "$path", ".*", "$node", ".*",
		"$window", "5m", "$job", ".*", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	exprs := d.exprs()
	keys := slices.Sorted(maps.Keys(exprs))
	n := 0
	for _, k := range keys {
		e := exprs[k]
		if m := labelValuesRE.FindStringSubmatch(e); m != nil {
			e = m[1]
		}
		q, _ := json.Marshal(repl.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: dashboard:expr_%d\n        expr: %s\n", n, q)
		n++
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's expressions: %v\n%s\n%s", err, out, b.String())
	}
}
