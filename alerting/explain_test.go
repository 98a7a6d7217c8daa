package alerting_test

import (
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
)

// noisy is a table whose latencies up to lag above a threshold are the
// daemon's own noise, and which details every value.
type noisy struct {
	table
	lag float64
}

func (n noisy) Explained(e checks.Expr, v float64) bool { return n.lag > 0 && v-n.lag <= e.Value }

func (n noisy) Details(measure string, s alerting.Series, _ time.Duration) map[string]string {
	return map[string]string{"affected": s.Labels["check"] + " via " + s.Labels["path"]}
}

// TestExplainedValuesNeitherPageNorResolve: a latency that crosses the
// threshold only by the daemon's own lag starts nothing, and keeps a firing
// instance firing rather than resolving it; details become annotations.
func TestExplainedValuesNeitherPageNorResolve(t *testing.T) {
	e := engine(t, `
alerts:
  - name: Slow
    when: p99 > 1.5s
    window: 5m
    annotations: {summary: "{{ .check }} slow in {{ .affected }}"}
`)
	all := []alerting.Series{series("shop-home", "direct", "lb2")}
	t0 := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	m := noisy{table: table{"shop-home/direct/lb2": {"p99": 1.6}}, lag: 0.2}
	if tr := e.Eval(t0, all, m); len(tr) != 0 {
		t.Fatalf("1.6s with 200ms of lag against 1.5s paged: %+v", tr)
	}
	m.table["shop-home/direct/lb2"]["p99"] = 2.5
	tr := e.Eval(t0.Add(10*time.Second), all, m)
	if len(tr) != 1 || tr[0].To != alerting.Firing {
		t.Fatalf("2.5s with 200ms of lag: want firing, got %+v", tr)
	}
	if got := tr[0].Instance.Annotations["affected"]; got != "shop-home via direct" {
		t.Errorf("affected annotation %q", got)
	}
	if got := tr[0].Instance.Annotations["summary"]; got != "shop-home slow in shop-home via direct" {
		t.Errorf("summary %q", got)
	}
	// Back within the noise: held, not resolved.
	m.table["shop-home/direct/lb2"]["p99"] = 1.6
	if tr := e.Eval(t0.Add(20*time.Second), all, m); len(tr) != 0 {
		t.Fatalf("a value the noise explains resolved the alert: %+v", tr)
	}
	// Noise gone, value below the threshold: resolved.
	m.lag = 0
	m.table["shop-home/direct/lb2"]["p99"] = 0.2
	if tr := e.Eval(t0.Add(30*time.Second), all, m); len(tr) != 1 || tr[0].To != alerting.Resolved {
		t.Fatalf("want resolved, got %+v", tr)
	}
}
