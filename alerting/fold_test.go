package alerting_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/alerting/webhook"
)

// foldConfig pages a per-check latency rule that decides faster (for: 10s)
// than the node rule (for: 30s), the race that used to send one page per
// check and path before the node page.
func foldConfig(url string) string {
	return `
global: {location: ams1}
checks:
  - {name: shop-home, type: http, url: "http://127.0.0.1/"}
  - {name: app-checkout, type: http, url: "http://127.0.0.1/"}
notifiers:
  - {name: room, type: webhook, url: "` + url + `", repeat_interval: 0s}
alerts:
  - name: ShopSlowForCustomers
    when: p99 > 1.5s
    for: 10s
    severity: page
    annotations: {summary: "{{ .check }} p99 {{ .value }} via {{ .path }} node {{ .node }}"}
  - name: LoadBalancerNodeDegraded
    when: node_slowdown > 3
    for: 30s
    by: [node]
    severity: page
    annotations:
      summary: "node {{ .node }}{{ with .node_address }} ({{ . }}){{ end }} is {{ .value }}x slower on {{ .affected }} since {{ .active_since }}"
`
}

// atAddr gives s its node's address, as the daemon does (Series.Data).
func atAddr(s alerting.Series, addr string) alerting.Series {
	s.Data = map[string]string{"node_address": addr}
	return s
}

func received(msgs []webhook.Message) string {
	var b strings.Builder
	for i, m := range msgs {
		for _, a := range m.Alerts {
			fmt.Fprintf(&b, "\n  message %d: %s %s %s", i, a.Status, a.Labels["alertname"], alerting.Place(a.Labels))
		}
	}
	return b.String()
}

// TestFoldIntoNodeAlert: one bad node is one page. The per-check alerts on
// the node fold into the node alert (held while it is pending), which lists
// the checks and paths and names the node by name and address; a check
// that joins later is a repeat of the node alert; once the node alert
// resolves, a check still slow a window later pages; folded alerts that were
// never sent are never resolved.
func TestFoldIntoNodeAlert(t *testing.T) {
	rcv := notifytest.NewReceiver(t, nil)
	f := newFixture(t)
	f.series = []alerting.Series{
		atAddr(series("shop-home", "direct", "lb1"), "127.0.0.11"),
		atAddr(series("shop-home", "direct", "lb2"), "127.0.0.12"),
		atAddr(series("shop-home", "alt-source", "lb2"), "127.0.0.12"),
		atAddr(series("app-checkout", "direct", "lb2"), "127.0.0.12"),
	}
	f.vals = table{
		"shop-home/direct/lb1":     {"p99": 0.2, "node_slowdown": 1},
		"shop-home/direct/lb2":     {"p99": 2.1, "p90": 2, "node_slowdown": 5},
		"shop-home/alt-source/lb2": {"p99": 0.2, "node_slowdown": 1},
		"app-checkout/direct/lb2":  {"p99": 1.9, "node_slowdown": 4},
	}
	f.open(foldConfig(rcv.URL))
	start := f.now
	f.step(50 * time.Second)

	msgs := rcv.Messages(t)
	if len(msgs) != 1 || len(msgs[0].Alerts) != 1 || msgs[0].Alerts[0].Labels["alertname"] != "LoadBalancerNodeDegraded" {
		t.Fatalf("want one page, the node alert; got:%s", received(msgs))
	}
	page := msgs[0].Alerts[0]
	wantAnn := map[string]string{
		"affected":     "app-checkout via direct, shop-home via direct",
		"node_address": "127.0.0.12",
		"folded": "ShopSlowForCustomers app-checkout via direct: p99 = 1.9s; " +
			"ShopSlowForCustomers shop-home via direct: p99 = 2.1s",
		"active_since": start.Add(10 * time.Second).Format(time.RFC3339),
		"node_p90":     "2s",
		"siblings_p90": "400ms",
		"summary": "node lb2 (127.0.0.12) is 5x slower on app-checkout via direct, shop-home via direct since " +
			start.Add(10*time.Second).Format(time.RFC3339),
	}
	for k, v := range wantAnn {
		if page.Annotations[k] != v {
			t.Errorf("node page annotation %s = %q, want %q", k, page.Annotations[k], v)
		}
	}
	// The folded alerts fire and say so; the API shows them.
	var nodeKey string
	folded := 0
	for _, inst := range f.m.Engine().Instances() {
		switch inst.Rule {
		case "LoadBalancerNodeDegraded":
			nodeKey = inst.Key
		case "ShopSlowForCustomers":
			if inst.State != alerting.Firing || inst.InhibitedBy == "" {
				t.Errorf("%s: state %s, inhibited_by %q; want firing, folded", inst.Key, inst.State, inst.InhibitedBy)
			}
			folded++
		}
	}
	for _, inst := range f.m.Engine().Instances() {
		if inst.Rule == "ShopSlowForCustomers" && inst.InhibitedBy != nodeKey {
			t.Errorf("%s folded into %q, want %q", inst.Key, inst.InhibitedBy, nodeKey)
		}
	}
	if folded != 2 {
		t.Errorf("%d folded instances, want 2", folded)
	}

	// Another path on the node turns slow: a repeat of the node page.
	f.vals["shop-home/alt-source/lb2"]["p99"] = 2.5
	f.step(30 * time.Second)
	msgs = rcv.Messages(t)
	if len(msgs) != 2 || msgs[1].Alerts[0].Labels["alertname"] != "LoadBalancerNodeDegraded" ||
		msgs[1].Alerts[0].Status != "firing" || !msgs[1].Alerts[0].StartsAt.Equal(page.StartsAt) {
		t.Fatalf("want the node page repeated; got:%s", received(msgs))
	}
	if got, want := msgs[1].Alerts[0].Annotations["affected"],
		"app-checkout via direct, shop-home via alt-source, shop-home via direct"; got != want {
		t.Errorf("repeat lists %q, want %q", got, want)
	}
	// That path recovers and turns slow again while the node is still
	// degraded: already announced, so no repeat.
	f.vals["shop-home/alt-source/lb2"]["p99"] = 0.2
	f.step(30 * time.Second)
	f.vals["shop-home/alt-source/lb2"]["p99"] = 2.5
	f.step(30 * time.Second)
	if msgs := rcv.Messages(t); len(msgs) != 2 {
		t.Fatalf("a path that came back repeated the node page; got:%s", received(msgs))
	}

	// The node recovers, but shop-home stays slow: the node alert
	// resolves, and nothing else goes out while shop-home's window may
	// still be showing the incident's slow runs; the alerts that recovered
	// with the node were never sent, so are not resolved.
	for _, k := range []string{"shop-home/direct/lb2", "app-checkout/direct/lb2"} {
		f.vals[k]["node_slowdown"] = 1
	}
	f.vals["app-checkout/direct/lb2"]["p99"] = 0.2
	f.vals["shop-home/alt-source/lb2"]["p99"] = 0.2
	sentSince := func(i int) string {
		var got []string
		for _, a := range alertsOf(rcv.Messages(t)[i:]) {
			got = append(got, a.Status+" "+a.Labels["alertname"]+" "+alerting.Place(a.Labels))
		}
		return strings.Join(got, "|")
	}
	f.step(20 * time.Second)
	if got, want := sentSince(2), "resolved LoadBalancerNodeDegraded "; got != want {
		t.Fatalf("after the node recovered: %q, want %q", got, want)
	}
	// A window (5m) later, still slow: a problem of its own, paged.
	f.step(5*time.Minute + 10*time.Second)
	if got, want := sentSince(2), "resolved LoadBalancerNodeDegraded |firing ShopSlowForCustomers shop-home via direct"; got != want {
		t.Fatalf("a window after the node recovered: %q, want %q", got, want)
	}
	f.vals["shop-home/direct/lb2"]["p99"] = 0.2
	f.step(20 * time.Second)
	last := alertsOf(rcv.Messages(t))
	if a := last[len(last)-1]; len(last) != 5 || a.Status != "resolved" || alerting.Place(a.Labels) != "shop-home via direct" {
		t.Fatalf("want shop-home's resolution last; got:%s", received(rcv.Messages(t)))
	}

	// A second episode, with a check the first did not have, is one page
	// again, not a page and a repeat (the first episode's folded alerts are
	// not its baseline).
	f.series = append(f.series, atAddr(series("app-checkout", "alt-source", "lb2"), "127.0.0.12"))
	f.vals["app-checkout/alt-source/lb2"] = map[string]float64{"p99": 3, "node_slowdown": 1}
	f.vals["shop-home/direct/lb2"]["p99"], f.vals["shop-home/direct/lb2"]["node_slowdown"] = 2.1, 5
	f.vals["app-checkout/direct/lb2"]["p99"], f.vals["app-checkout/direct/lb2"]["node_slowdown"] = 1.9, 4
	f.vals["shop-home/alt-source/lb2"]["p99"] = 2.5
	f.step(60 * time.Second)
	again := alertsOf(rcv.Messages(t))[5:]
	if len(again) != 1 || again[0].Labels["alertname"] != "LoadBalancerNodeDegraded" || again[0].Annotations["fired_count"] != "2" ||
		again[0].Annotations["affected"] != "app-checkout via alt-source, app-checkout via direct, shop-home via alt-source, shop-home via direct" {
		t.Fatalf("second episode: want one node page listing all four; got:%s", received(rcv.Messages(t)))
	}
}

func alertsOf(msgs []webhook.Message) []webhook.Alert {
	var out []webhook.Alert
	for _, m := range msgs {
		out = append(out, m.Alerts...)
	}
	return out
}

// TestAlertmanagerGetsFoldedAlertsOnceNodeDecides: Alertmanager inhibits
// with its own rules, so it gets the folded alerts too, but only once the
// node alert has left pending; it cannot inhibit with an alert it does not
// have yet.
func TestAlertmanagerGetsFoldedAlertsOnceNodeDecides(t *testing.T) {
	am := notifytest.NewReceiver(t, nil)
	f := newFixture(t)
	f.series = []alerting.Series{series("shop-home", "direct", "lb1"), series("shop-home", "direct", "lb2")}
	f.vals = table{
		"shop-home/direct/lb1": {"p99": 0.2, "node_slowdown": 1},
		"shop-home/direct/lb2": {"p99": 2.1, "node_slowdown": 5},
	}
	f.open(strings.Replace(foldConfig(""), `{name: room, type: webhook, url: "", repeat_interval: 0s}`,
		`{name: am, type: alertmanager, url: "`+am.URL+`"}`, 1))
	names := func() []string {
		var out []string
		for _, r := range am.Requests() {
			var alerts []struct {
				Labels map[string]string `json:"labels"`
			}
			if r.Path == "/api/v2/alerts" && json.Unmarshal(r.Body, &alerts) == nil {
				for _, a := range alerts {
					out = append(out, a.Labels["alertname"])
				}
			}
		}
		return out
	}
	// 21:00:10 both pending; 21:00:20 the per-check alert fires, held.
	f.step(35 * time.Second)
	if got := names(); len(got) != 0 {
		t.Fatalf("alertmanager got %v while the node alert was pending", got)
	}
	// 21:00:40 the node alert fires: both go.
	f.step(10 * time.Second)
	if got := strings.Join(names(), ","); got != "LoadBalancerNodeDegraded,ShopSlowForCustomers" {
		t.Fatalf("alertmanager got %q, want the node alert then the per-check alert", got)
	}
}

// TestFoldedAlertsEndWithTheirNode: when the node alert resolves, the
// per-check alerts folded into it that only keep firing by their
// keep_firing_for belong to the incident that just ended; they do not page
// on their own ("p99 6ms", seen in the detection benchmark), but one whose
// condition still holds does.
func TestFoldedAlertsEndWithTheirNode(t *testing.T) {
	rcv := notifytest.NewReceiver(t, nil)
	f := newFixture(t)
	f.series = []alerting.Series{
		atAddr(series("shop-home", "direct", "lb1"), "127.0.0.11"),
		atAddr(series("shop-home", "direct", "lb2"), "127.0.0.12"),
		atAddr(series("app-checkout", "direct", "lb2"), "127.0.0.12"),
	}
	f.vals = table{
		"shop-home/direct/lb1":    {"p99": 0.2, "node_slowdown": 1},
		"shop-home/direct/lb2":    {"p99": 2.1, "node_slowdown": 5},
		"app-checkout/direct/lb2": {"p99": 1.9, "node_slowdown": 4},
	}
	f.open(strings.Replace(foldConfig(rcv.URL), "    for: 10s\n", "    for: 10s\n    keep_firing_for: 2m\n", 1))
	f.step(50 * time.Second)
	if msgs := rcv.Messages(t); len(msgs) != 1 || msgs[0].Alerts[0].Labels["alertname"] != "LoadBalancerNodeDegraded" {
		t.Fatalf("want the node page alone; got:%s", received(msgs))
	}
	// The node recovers; shop-home is fast again (firing only by
	// keep_firing_for), app-checkout is still slow.
	for _, k := range []string{"shop-home/direct/lb2", "app-checkout/direct/lb2"} {
		f.vals[k]["node_slowdown"] = 1
	}
	f.vals["shop-home/direct/lb2"]["p99"] = 0.006
	f.step(20 * time.Second)
	sent := func() string {
		var got []string
		for _, a := range alertsOf(rcv.Messages(t)[1:]) {
			got = append(got, a.Status+" "+a.Labels["alertname"]+" "+alerting.Place(a.Labels))
		}
		return strings.Join(got, "|")
	}
	// Right after: the node page resolves, and nothing else goes out. A
	// check still slow then may only be showing the incident's slow runs,
	// still in its window: that is not a second page.
	if got, want := sent(), "resolved LoadBalancerNodeDegraded "; got != want {
		t.Fatalf("after the node recovered: %q, want %q", got, want)
	}
	// Once a whole window (the default, 5m) has passed since the node
	// alert covered it, app-checkout, still slow, is a problem of its own
	// and pages; shop-home, fast again, never does.
	f.step(5*time.Minute + 10*time.Second)
	if got, want := sent(), "resolved LoadBalancerNodeDegraded |firing ShopSlowForCustomers app-checkout via direct"; got != want {
		t.Fatalf("a window after the node recovered: %q, want %q", got, want)
	}
}
