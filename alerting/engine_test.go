package alerting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/kinds"
)

// table is a Measures backed by a map: target key -> measure -> value.
type table map[string]map[string]float64

func (t table) Measure(measure string, s alerting.Series, _ time.Duration) (float64, bool) {
	key := s.Target
	if s.Domain != "" {
		key += "#" + s.Domain
	}
	v, ok := t[key][measure]
	return v, ok
}

func series(check, path, node string) alerting.Series {
	return alerting.Series{Target: check + "/" + path + "/" + node,
		Labels: map[string]string{"check": check, "path": path, "node": node, "type": "http"}}
}

func rule(t *testing.T, yaml string) *checks.Config {
	t.Helper()
	cfg, err := kinds.Registry().Parse([]byte(yaml), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const base = `
global: {location: ams1, flap_window: 1h}
checks:
  - {name: shop-home, type: http, url: "http://127.0.0.1/"}
  - {name: cdn, type: http, url: "http://127.0.0.1/"}
`

func engine(t *testing.T, alerts string) *alerting.Engine {
	e := alerting.New(alerting.Options{Logger: zerolog.Nop()})
	if err := e.Configure(rule(t, base+alerts)); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPendingFiringResolved(t *testing.T) {
	e := engine(t, `
alerts:
  - name: Slow
    checks: ["shop-*"]
    when: p99 > 1.5s
    window: 5m
    for: 1m
    severity: page
    annotations: {summary: "{{ .check }} p99 {{ .value }} via {{ .path }} node {{ .node }}"}
`)
	all := []alerting.Series{series("shop-home", "direct", "lb1"), series("shop-home", "direct", "lb2"), series("cdn", "direct", "")}
	m := table{
		"shop-home/direct/lb1": {"p99": 0.2},
		"shop-home/direct/lb2": {"p99": 2.1},
		"cdn/direct/":          {"p99": 9}, // not matched by the glob
	}
	t0 := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	tr := e.Eval(t0, all, m)
	if len(tr) != 1 || tr[0].To != alerting.Pending || tr[0].Instance.Labels["node"] != "lb2" {
		t.Fatalf("t0: %+v", tr)
	}
	if tr := e.Eval(t0.Add(30*time.Second), all, m); len(tr) != 0 {
		t.Fatalf("t0+30s: unexpected %+v", tr)
	}
	tr = e.Eval(t0.Add(time.Minute), all, m)
	if len(tr) != 1 || tr[0].To != alerting.Firing {
		t.Fatalf("t0+1m: want firing, got %+v", tr)
	}
	inst := tr[0].Instance
	wantLabels := map[string]string{"alertname": "Slow", "check": "shop-home", "path": "direct", "node": "lb2", "location": "ams1", "severity": "page"}
	for k, v := range wantLabels {
		if inst.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, inst.Labels[k], v)
		}
	}
	if len(inst.Labels) != len(wantLabels) {
		t.Errorf("labels %v, want exactly %v", inst.Labels, wantLabels)
	}
	if got := inst.Annotations["summary"]; got != "shop-home p99 2.1s via direct node lb2" {
		t.Errorf("summary = %q", got)
	}
	if inst.Annotations["fired_count"] != "1" || inst.Annotations["first_fired_at"] != "2026-11-26T21:01:00Z" || inst.Annotations["flapping"] != "" {
		t.Errorf("flap annotations: %v", inst.Annotations)
	}
	m["shop-home/direct/lb2"]["p99"] = 0.3
	tr = e.Eval(t0.Add(8*time.Minute), all, m)
	if len(tr) != 1 || tr[0].To != alerting.Resolved {
		t.Fatalf("want resolved, got %+v", tr)
	}
	if got := tr[0].Instance.Annotations["resolution"]; got != "resolved after 7m; fired once in the last hour" {
		t.Errorf("resolution = %q", got)
	}
}

func TestPendingClearsWithoutFiring(t *testing.T) {
	e := engine(t, "alerts: [{name: A, when: failures > 2, window: 5m, for: 2m}]")
	all := []alerting.Series{series("cdn", "direct", "")}
	m := table{"cdn/direct/": {"failures": 5}}
	t0 := time.Unix(1_800_000_000, 0)
	if tr := e.Eval(t0, all, m); len(tr) != 1 || tr[0].To != alerting.Pending {
		t.Fatalf("%+v", tr)
	}
	m["cdn/direct/"]["failures"] = 0
	tr := e.Eval(t0.Add(time.Minute), all, m)
	if len(tr) != 1 || tr[0].To != alerting.Inactive {
		t.Fatalf("want inactive, got %+v", tr)
	}
	if len(e.Instances()) != 0 {
		t.Fatal("inactive instance kept")
	}
}

func TestKeepFiringFor(t *testing.T) {
	e := engine(t, "alerts: [{name: A, when: success_ratio < 0.9, window: 5m, keep_firing_for: 10m}]")
	all := []alerting.Series{series("cdn", "direct", "")}
	m := table{"cdn/direct/": {"success_ratio": 0.5}}
	t0 := time.Unix(1_800_000_000, 0)
	if tr := e.Eval(t0, all, m); len(tr) != 1 || tr[0].To != alerting.Firing {
		t.Fatalf("for: 0 should fire at once: %+v", tr)
	}
	m["cdn/direct/"]["success_ratio"] = 1
	if tr := e.Eval(t0.Add(9*time.Minute), all, m); len(tr) != 0 {
		t.Fatalf("resolved before keep_firing_for: %+v", tr)
	}
	// Comes back within keep_firing_for: still the same firing episode.
	m["cdn/direct/"]["success_ratio"] = 0.5
	if tr := e.Eval(t0.Add(9*time.Minute+30*time.Second), all, m); len(tr) != 0 {
		t.Fatalf("%+v", tr)
	}
	m["cdn/direct/"]["success_ratio"] = 1
	if tr := e.Eval(t0.Add(15*time.Minute), all, m); len(tr) != 0 {
		t.Fatalf("resolved too early: %+v", tr)
	}
	tr := e.Eval(t0.Add(20*time.Minute), all, m)
	if len(tr) != 1 || tr[0].To != alerting.Resolved {
		t.Fatalf("want resolved after keep_firing_for, got %+v", tr)
	}
	if n := tr[0].Instance.FiredCount(); n != 1 {
		t.Fatalf("fired count = %d, want 1 (one episode)", n)
	}
}

func TestFlapMemory(t *testing.T) {
	e := engine(t, "alerts: [{name: NodeDegraded, when: node_slowdown > 3, window: 5m, for: 1m}]")
	all := []alerting.Series{series("shop-home", "direct", "lb2")}
	m := table{"shop-home/direct/lb2": {"node_slowdown": 1}}
	t0 := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	now := t0
	var last alerting.Transition
	fire := func() {
		m["shop-home/direct/lb2"]["node_slowdown"] = 4.2
		e.Eval(now, all, m)
		now = now.Add(time.Minute)
		tr := e.Eval(now, all, m)
		if len(tr) != 1 || tr[0].To != alerting.Firing {
			t.Fatalf("at %v want firing, got %+v", now, tr)
		}
		last = tr[0]
		now = now.Add(4 * time.Minute)
		m["shop-home/direct/lb2"]["node_slowdown"] = 1
		tr = e.Eval(now, all, m)
		if len(tr) != 1 || tr[0].To != alerting.Resolved {
			t.Fatalf("at %v want resolved, got %+v", now, tr)
		}
		last = tr[0]
		now = now.Add(10 * time.Minute)
	}
	fire()
	if last.Instance.Annotations["flapping"] != "" {
		t.Fatal("flapping after one episode")
	}
	fire()
	if last.Instance.Annotations["flapping"] != "true" || last.Instance.Annotations["fired_count"] != "2" {
		t.Fatalf("after two episodes: %v", last.Instance.Annotations)
	}
	fire()
	a := last.Instance.Annotations
	if a["fired_count"] != "3" || a["first_fired_at"] != "2026-11-26T20:01:00Z" {
		t.Fatalf("after three episodes: %v", a)
	}
	if a["resolution"] != "resolved after 4m; fired 3 times in the last hour" {
		t.Fatalf("resolution = %q", a["resolution"])
	}
	if last.Instance.Labels["flapping"] != "" {
		t.Fatal("flapping must not be a label (Alertmanager grouping must stay stable)")
	}
	// An hour later the memory has faded.
	now = now.Add(2 * time.Hour)
	fire()
	if last.Instance.Annotations["fired_count"] != "1" {
		t.Fatalf("flap memory did not expire: %v", last.Instance.Annotations)
	}
}

func TestGroupingBy(t *testing.T) {
	e := engine(t, "alerts: [{name: A, when: p90 > 1s, window: 5m, by: [check, path]}]")
	all := []alerting.Series{series("shop-home", "direct", "lb1"), series("shop-home", "direct", "lb2"), series("shop-home", "isp-b", "lb1")}
	m := table{
		"shop-home/direct/lb1": {"p90": 1.2},
		"shop-home/direct/lb2": {"p90": 3.4},
		"shop-home/isp-b/lb1":  {"p90": 0.1},
	}
	tr := e.Eval(time.Unix(1_800_000_000, 0), all, m)
	if len(tr) != 1 {
		t.Fatalf("want one instance for check+path, got %d: %+v", len(tr), tr)
	}
	in := tr[0].Instance
	if in.Labels["node"] != "" || in.Labels["path"] != "direct" || in.Value != 3.4 {
		t.Fatalf("group labels/value: %v %v", in.Labels, in.Value)
	}
}

func TestRestoreContinuesState(t *testing.T) {
	yaml := "alerts: [{name: A, when: failures > 0, window: 5m, for: 2m}]"
	e := engine(t, yaml)
	all := []alerting.Series{series("cdn", "direct", "")}
	m := table{"cdn/direct/": {"failures": 3}}
	t0 := time.Unix(1_800_000_000, 0)
	e.Eval(t0, all, m) // pending
	saved := e.Instances()

	e2 := engine(t, yaml)
	e2.Restore(saved)
	// The pending timer continues: fires at t0+2m, not t0+1m+2m.
	tr := e2.Eval(t0.Add(2*time.Minute), all, m)
	if len(tr) != 1 || tr[0].To != alerting.Firing {
		t.Fatalf("restored pending timer did not continue: %+v", tr)
	}
	// And a restored firing instance is not fired again.
	e3 := engine(t, yaml)
	e3.Restore(e2.Instances())
	if tr := e3.Eval(t0.Add(3*time.Minute), all, m); len(tr) != 0 {
		t.Fatalf("restored firing instance re-fired: %+v", tr)
	}
}

// TestRestoredFiringWaitsForData: right after a restart the statistics are
// empty; a restored firing alert neither resolves on "no data" nor fires
// again when the first runs show the fault still there (it did: one more
// page with fired_count=2 after every restart).
func TestRestoredFiringWaitsForData(t *testing.T) {
	yaml := "alerts: [{name: A, when: failures > 0, window: 5m}]"
	e := engine(t, yaml)
	all := []alerting.Series{series("cdn", "direct", "")}
	t0 := time.Unix(1_800_000_000, 0)
	if tr := e.Eval(t0, all, table{"cdn/direct/": {"failures": 3}}); len(tr) != 1 || tr[0].To != alerting.Firing {
		t.Fatalf("want firing, got %+v", tr)
	}
	e2 := engine(t, yaml)
	e2.Restore(e.Instances())
	if tr := e2.Eval(t0.Add(time.Minute), all, table{}); len(tr) != 0 {
		t.Fatalf("no data yet after the restart: %+v", tr)
	}
	if tr := e2.Eval(t0.Add(70*time.Second), all, table{"cdn/direct/": {"failures": 1}}); len(tr) != 0 {
		t.Fatalf("the fault still there after the restart: %+v", tr)
	}
	// A series that is gone (a removed target) still resolves.
	if tr := e2.Eval(t0.Add(80*time.Second), nil, table{}); len(tr) != 1 || tr[0].To != alerting.Resolved {
		t.Fatalf("a removed series: want resolved, got %+v", tr)
	}
}

// A pending instance of a removed rule is dropped (a firing one resolves:
// TestRemovedRuleResolves).
func TestConfigureDropsRemovedRules(t *testing.T) {
	e := engine(t, "alerts: [{name: A, when: failures > 0, window: 5m, for: 1m}]")
	e.Eval(time.Unix(1_800_000_000, 0), []alerting.Series{series("cdn", "direct", "")}, table{"cdn/direct/": {"failures": 1}})
	if len(e.Instances()) != 1 {
		t.Fatal("no instance")
	}
	if err := e.Configure(rule(t, base+"alerts: [{name: B, when: failures > 0, window: 5m}]")); err != nil {
		t.Fatal(err)
	}
	if len(e.Instances()) != 0 {
		t.Fatal("instance of a removed rule survived")
	}
}

func TestFormatValue(t *testing.T) {
	cases := map[string]string{
		alerting.FormatValue("p99", 1.5234):           "1.523s",
		alerting.FormatValue("success_ratio", 0.9):    "0.9",
		alerting.FormatValue("failures", 14):          "14",
		alerting.FormatValue("node_slowdown", 4.2341): "4.234",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
	if got := alerting.WindowPhrase(125 * time.Minute); got != "2h5m" {
		t.Error(got)
	}
}

// TestConfigureKeepsInstances: a reload that changes a rule but keeps its
// name keeps its instances (state, timers, flap history) and they follow
// the new definition: threshold, notifiers, annotations.
func TestConfigureKeepsInstances(t *testing.T) {
	const notifiers = `
notifiers:
  - {name: a, type: webhook, url: "http://127.0.0.1:1/a"}
  - {name: b, type: webhook, url: "http://127.0.0.1:1/b"}
`
	e := engine(t, notifiers+`
alerts:
  - name: Slow
    when: p99 > 1.5s
    for: 1m
    notify: [a]
    annotations: {summary: "old {{ .value }}"}
`)
	all := []alerting.Series{series("shop-home", "direct", "lb2")}
	m := table{"shop-home/direct/lb2": {"p99": 2.1}}
	t0 := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	e.Eval(t0, all, m)
	if tr := e.Eval(t0.Add(time.Minute), all, m); len(tr) != 1 || tr[0].To != alerting.Firing {
		t.Fatalf("want firing, got %+v", tr)
	}
	before := e.Instances()[0]
	if err := e.Configure(rule(t, base+notifiers+`
alerts:
  - name: Slow
    when: p99 > 2s
    for: 2m
    notify: [b]
    annotations: {summary: "new {{ .value }}"}
`)); err != nil {
		t.Fatal(err)
	}
	if tr := e.Eval(t0.Add(70*time.Second), all, m); len(tr) != 0 {
		t.Fatalf("a changed rule that still holds: unexpected transitions %+v", tr)
	}
	after := e.Instances()[0]
	if after.State != alerting.Firing || !after.ActiveAt.Equal(before.ActiveAt) || !after.FiredAt.Equal(before.FiredAt) ||
		after.FiredCount() != 1 || !after.LastTrueAt.Equal(t0.Add(70*time.Second)) {
		t.Errorf("after the reload: %+v\nbefore: %+v", after, before)
	}
	if len(after.Notify) != 1 || after.Notify[0] != "b" || after.Annotations["summary"] != "new 2.1s" {
		t.Errorf("instance does not follow the new rule: notify %v, summary %q", after.Notify, after.Annotations["summary"])
	}
	// The new threshold decides: 1.8s no longer holds.
	m["shop-home/direct/lb2"]["p99"] = 1.8
	if tr := e.Eval(t0.Add(80*time.Second), all, m); len(tr) != 1 || tr[0].To != alerting.Resolved {
		t.Fatalf("below the new threshold: want resolved, got %+v", tr)
	}
}

// TestFoldScope: a node alert (any node_* measure whose instances name a
// node, whatever else it groups by) folds the alerts on its node only;
// alerts without a node and alerts on other nodes stay their own.
func TestFoldScope(t *testing.T) {
	e := engine(t, `
alerts:
  - {name: Slow, when: p99 > 1.5s}
  - {name: Node, when: node_slowdown > 3}
`)
	all := []alerting.Series{series("shop-home", "direct", "lb1"), series("shop-home", "direct", "lb2"),
		series("cdn", "direct", "lb2"), series("cdn", "alt", "")}
	m := table{
		"shop-home/direct/lb1": {"p99": 2, "node_slowdown": 1},
		"shop-home/direct/lb2": {"p99": 2, "node_slowdown": 4},
		"cdn/direct/lb2":       {"p99": 2},
		"cdn/alt/":             {"p99": 2},
	}
	e.Eval(time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC), all, m)
	want := map[string]string{
		"Slow|check=shop-home|node=lb1|path=direct": "",
		"Slow|check=shop-home|node=lb2|path=direct": "Node|check=shop-home|node=lb2|path=direct",
		"Slow|check=cdn|node=lb2|path=direct":       "Node|check=shop-home|node=lb2|path=direct",
		"Slow|check=cdn|node=|path=alt":             "",
		"Node|check=shop-home|node=lb2|path=direct": "",
	}
	insts := e.Instances()
	if len(insts) != len(want) {
		t.Fatalf("%d instances, want %d: %+v", len(insts), len(want), insts)
	}
	for _, inst := range insts {
		if w, ok := want[inst.Key]; !ok || inst.InhibitedBy != w {
			t.Errorf("%s: inhibited_by %q, want %q", inst.Key, inst.InhibitedBy, w)
		}
		if inst.Rule == "Node" && strings.Join(inst.Affected, ", ") != "cdn via direct, shop-home via direct" {
			t.Errorf("node alert affected %q", inst.Affected)
		}
	}
}

// TestRemovedRuleResolves: a reload that removes a rule resolves its firing
// instances at the next evaluation (with their resolution), rather than
// dropping them and leaving receivers with an alert that never ends.
func TestRemovedRuleResolves(t *testing.T) {
	e := engine(t, `
alerts:
  - {name: Slow, when: p99 > 1.5s}
  - {name: Down, when: failures > 0}
`)
	all := []alerting.Series{series("shop-home", "direct", "lb2")}
	m := table{"shop-home/direct/lb2": {"p99": 2.1, "failures": 1}}
	t0 := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	if tr := e.Eval(t0, all, m); len(tr) != 2 {
		t.Fatalf("want two firing, got %+v", tr)
	}
	if err := e.Configure(rule(t, base+"alerts: [{name: Down, when: failures > 0}]\n")); err != nil {
		t.Fatal(err)
	}
	tr := e.Eval(t0.Add(10*time.Second), all, m)
	if len(tr) != 1 || tr[0].Instance.Rule != "Slow" || tr[0].To != alerting.Resolved ||
		!strings.HasPrefix(tr[0].Instance.Annotations["resolution"], "resolved after 10s") {
		t.Fatalf("want Slow resolved, got %+v", tr)
	}
	if tr := e.Eval(t0.Add(20*time.Second), all, m); len(tr) != 0 {
		t.Fatalf("unexpected %+v", tr)
	}
}
