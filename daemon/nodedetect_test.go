package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/web"
)

// TestPartlySlowNodePagesOnceStaysAndResolves is the seed incident through
// the whole daemon: lb2 slow on 30 % of its responses. The node detector
// pages once, naming lb2 with its evidence; the page stays firing for as
// long as the fault lasts (no RESOLVED while customers still suffer); it
// resolves once the fault is gone; and no healthy node is ever paged, even
// on a loaded test machine.
func TestPartlySlowNodePagesOnceStaysAndResolves(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	rcv := startReceiver(t)
	// 1.5 s of injected latency, as in the demo: slow runs 1 s slower than
	// their siblings count at the detector's largest threshold, far beyond
	// the scheduling lag of a loaded test machine, which the detector would
	// otherwise (rightly) discount.
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: 2 * time.Second, Timeout: 1900 * time.Millisecond,
		WebhookURL: rcv.URL(), NoAlerts: true, NoAltPath: true})
	// min_excess 200ms: a test machine loaded by the rest of the suite
	// slows healthy runs by a few hundred ms now and then; the detector's
	// thresholds (200ms, 600ms, 2s over the siblings' p90) leave the 1.5 s
	// fault clear of that.
	cfg = strings.Replace(cfg, "global:\n", "global:\n  node_detection: {baseline: 3m, min_excess: 200ms}\n", 1) + `
alerts:
  - name: LoadBalancerNodeDegraded
    when: node_degraded > 0
    window: 1m
    by: [node]
    severity: page
    annotations:
      summary: "{{ .node }}: {{ .slow_share }} of runs slow or failed (siblings {{ .sibling_slow_share }}) in {{ .affected }}"
`
	r := startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, cfg), StoragePath: t.TempDir(),
		Notifiers: kinds.Notifiers(), EvalInterval: 500 * time.Millisecond})

	// A healthy minute first: the siblings' baseline, and the false-page
	// control.
	testenv.Eventually(t, 2*time.Minute, "", func() error {
		e := r.scrape(t)
		if v, ok := e.value(t, "vantage_node_evidence", lbl("node", lb2)); !ok {
			return fmt.Errorf("no evidence for %s yet", lb2)
		} else if v > 3 {
			t.Errorf("evidence %.1f against healthy %s", v, lb2)
		}
		return nil
	})
	time.Sleep(40 * time.Second)
	if got := alertsOf(rcv.Messages()); len(got) != 0 {
		t.Fatalf("pages from a healthy shop:%s", describe(got))
	}

	setFault(t, shop, "lb2:latency=1500ms,latency_ratio=0.3")
	injected := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			e := r.scrape(t)
			lag, _ := e.value(t, "vantage_measurement_lag_seconds", nil)
			t.Logf("measurement lag %.3fs", lag)
			for _, n := range []string{"lb1", lb2, "lb3"} {
				ev, _ := e.value(t, "vantage_node_evidence", lbl("node", n))
				sh, _ := e.value(t, "vantage_node_slow_runs_ratio", lbl("node", n))
				t.Logf("%s: evidence %.2f, slow share %.3f", n, ev, sh)
			}
		}
	})
	got := waitAlerts(t, rcv, lb2, 1, 2*time.Minute)
	page := got[0]
	t.Logf("paged after %s: %s", time.Since(injected).Round(100*time.Millisecond), page.Annotations["summary"])
	if page.Status != "firing" || page.Labels["alertname"] != "LoadBalancerNodeDegraded" {
		t.Fatalf("want LoadBalancerNodeDegraded firing for %s, got:%s", lb2, describe(got))
	}
	for _, k := range []string{"slow_share", "sibling_slow_share", "p90", "sibling_p90", "slow_runs_take", "evidence", "affected", "degraded_since"} {
		if page.Annotations[k] == "" {
			t.Errorf("the page has no %s annotation: %v", k, page.Annotations)
		}
	}
	// lb2 serves the four shop-* pages (app-checkout is on the API host).
	if aff := page.Annotations["affected"]; !strings.Contains(aff, "shop-") || strings.Contains(aff, "app-checkout") {
		t.Errorf("affected %q names no check of lb2, or one that is not on it", aff)
	}

	// The status page and the API name the node and its evidence.
	code, body := r.do(t, "GET", "/api/v1/checks", nil)
	var doc struct {
		Data struct {
			Measurement *web.MeasurementStatus `json:"measurement"`
			Nodes       []web.NodeStatus       `json:"nodes"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
		t.Fatalf("/api/v1/checks: %d %v", code, err)
	}
	var seen bool
	for _, n := range doc.Data.Nodes {
		if n.Node == lb2 {
			seen = true
			if n.State != web.NodeDegraded || n.Address != "127.0.0.12" || n.SlowShare == nil || len(n.Affected) == 0 {
				t.Errorf("/api/v1/checks shows lb2 as %+v", n)
			}
		}
	}
	if !seen || doc.Data.Measurement == nil {
		t.Errorf("/api/v1/checks has no verdict for lb2 or no measurement health: %+v", doc.Data)
	}
	if code, body := r.do(t, "GET", "/", nil); code != 200 || !strings.Contains(body, `<tr class="node degraded">`) {
		t.Errorf("the status page does not list lb2 as degraded: %d", code)
	}

	// The fault lasts on: the page stays, alone.
	time.Sleep(60 * time.Second)
	if got := forNode(alertsOf(rcv.Messages()), lb2); len(got) != 1 {
		t.Fatalf("while lb2 is still partly slow, want the one page and nothing else, got:%s", describe(got))
	}
	if v, _ := r.scrape(t).value(t, "vantage_node_degraded", lbl("node", lb2)); v != 1 {
		t.Errorf("vantage_node_degraded{node=%s} = %v during the fault", lb2, v)
	}

	setFault(t, shop, "lb2:clear")
	cleared := time.Now()
	got = waitAlerts(t, rcv, lb2, 2, 3*time.Minute)
	t.Logf("resolved %s after the fault was cleared", time.Since(cleared).Round(100*time.Millisecond))
	if got[1].Status != "resolved" {
		t.Fatalf("want one page then one resolved notice, got:%s", describe(got))
	}
	for _, a := range alertsOf(rcv.Messages()) {
		if a.Labels["node"] != lb2 {
			t.Errorf("a healthy node was paged:%s", describe([]webhook.Alert{a}))
		}
	}
}
