package alerting_test

import (
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
)

// withAddr is series with the node's address as Series.Data.
func withAddr(check, path, node, addr string) alerting.Series {
	s := series(check, path, node)
	s.Data = map[string]string{"node_address": addr}
	return s
}

// Series.Data reaches annotation templates as {{ .node_address }} but never
// the labels: grouping by node is the same with or without addresses.
func TestNodeAddressInAnnotationsOnly(t *testing.T) {
	e := engine(t, `
alerts:
  - name: NodeSlow
    when: p99 > 1s
    by: [node]
    annotations: {summary: "node {{ .node }} ({{ .node_address }})"}
  - name: CheckSlow
    checks: [shop-home]
    when: p99 > 1s
    by: [check]
    annotations: {summary: "{{ .check }} on {{ .node_address }}"}
  - name: CdnSlow
    checks: [cdn]
    when: p99 > 1s
    annotations: {summary: "cdn [{{ .node_address }}]"}
`)
	all := []alerting.Series{
		withAddr("shop-home", "direct", "lb1", "10.0.0.11"),
		withAddr("shop-home", "direct", "lb2", "10.0.0.12"),
		withAddr("shop-home", "isp-b", "lb2", "10.0.0.12"),
		withAddr("cdn", "direct", "", ""),
	}
	m := table{
		"shop-home/direct/lb1": {"p99": 1.2},
		"shop-home/direct/lb2": {"p99": 2.1},
		"shop-home/isp-b/lb2":  {"p99": 2.4},
		"cdn/direct/":          {"p99": 3},
	}
	got := map[string]string{}
	for _, tr := range e.Eval(time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC), all, m) {
		inst := tr.Instance
		if _, ok := inst.Labels["node_address"]; ok {
			t.Errorf("%s: node_address is a label: %v", inst.Key, inst.Labels)
		}
		got[inst.Rule+"/"+inst.Labels["node"]] = inst.Annotations["summary"]
	}
	for k, want := range map[string]string{
		"NodeSlow/lb1": "node lb1 (10.0.0.11)",
		"NodeSlow/lb2": "node lb2 (10.0.0.12)",
		"CheckSlow/":   "shop-home on 10.0.0.11, 10.0.0.12",
		"CdnSlow/":     "cdn []", // no node, no address
		"NodeSlow/":    "node  ()",
	} {
		if got[k] != want {
			t.Errorf("%s summary %q, want %q", k, got[k], want)
		}
	}
	if len(got) != 5 {
		t.Errorf("instances %v", got)
	}
}
