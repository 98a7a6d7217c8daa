package daemon_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
)

// downConfig is a failing check (its target answers 503) with an alert on
// it. timeout, team (a check label that is not one of the alert's labels)
// and threshold are what the reload changes.
func downConfig(target, hook string, timeout time.Duration, team string, threshold float64) string {
	return fmt.Sprintf(`global:
  interval: 300ms
  timeout: 250ms
  location: test
checks:
  - name: api
    type: http
    url: %s
    timeout: %s
    labels: {team: %s}
    expect: {status: [200]}
notifiers:
  - name: room
    type: webhook
    url: %s
    send_resolved: true
    repeat_interval: 30m
alerts:
  - name: ApiDown
    checks: [api]
    when: success_ratio < %g
    window: 3s
    for: 900ms
    severity: page
    annotations:
      summary: "{{ .check }} succeeds for {{ .value }} of runs"
`, target, durYAML(timeout), team, hook, threshold)
}

// TestReloadKeepsFiringAlert is issue 11's seventh case: a reload that
// changes a failing check (its timeout and a label that is not an alert
// label) and its rule's threshold, while the target stays down, keeps the
// alert firing with its timers and flap history: no RESOLVED, no second
// FIRING. Removing the check afterwards resolves it.
func TestReloadKeepsFiringAlert(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	rcv := startReceiver(t)
	cfgFile := writeConfig(t, downConfig(down.URL, rcv.URL(), 250*time.Millisecond, "a", 0.5))
	r := startDaemon(t, daemon.Options{ConfigFile: cfgFile, StoragePath: t.TempDir(),
		Notifiers: kinds.Notifiers(), EvalInterval: 200 * time.Millisecond})

	// Only ApiDown is the test's: a loaded machine may also raise the
	// built-in VantageMeasurementDegraded, rightly.
	apiDown := func() []webhook.Alert {
		var out []webhook.Alert
		for _, a := range alertsOf(rcv.Messages()) {
			if a.Labels["alertname"] == "ApiDown" {
				out = append(out, a)
			}
		}
		return out
	}
	testenv.Eventually(t, 30*time.Second, "the first page", func() error {
		if got := apiDown(); len(got) == 0 {
			return errNotYet
		}
		return nil
	})
	instance := func() alerting.Instance {
		t.Helper()
		var insts []alerting.Instance
		for _, in := range r.d.Alerts().Engine().Instances() {
			if in.Rule == "ApiDown" {
				insts = append(insts, in)
			}
		}
		if len(insts) != 1 {
			t.Fatalf("%d ApiDown instances, want 1: %+v", len(insts), r.d.Alerts().Engine().Instances())
		}
		return insts[0]
	}
	before := instance()
	if before.State != alerting.Firing || before.FiredCount() != 1 {
		t.Fatalf("before the reload: state %s, fired_count %d; want firing, 1", before.State, before.FiredCount())
	}

	// Two reloads: each rebuilds the check's target under the same key.
	writeFile(t, cfgFile, downConfig(down.URL, rcv.URL(), 200*time.Millisecond, "b", 0.6))
	if err := r.d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	time.Sleep(2 * time.Second) // ten evaluations, several runs of the rebuilt target
	writeFile(t, cfgFile, downConfig(down.URL, rcv.URL(), 150*time.Millisecond, "c", 0.6))
	if err := r.d.Reload(); err != nil {
		t.Fatalf("second reload: %v", err)
	}
	time.Sleep(2 * time.Second)

	got := apiDown()
	if len(got) != 1 || got[0].Status != "firing" {
		t.Fatalf("notifications across reloads of a check that stayed down, want the one FIRING:%s", describe(got))
	}
	after := instance()
	if after.State != alerting.Firing || after.FiredCount() != 1 {
		t.Errorf("after the reloads: state %s, fired_count %d; want firing, 1", after.State, after.FiredCount())
	}
	if !after.ActiveAt.Equal(before.ActiveAt) || !after.FiredAt.Equal(before.FiredAt) {
		t.Errorf("timers changed across the reloads: active %s→%s, fired %s→%s",
			before.ActiveAt, after.ActiveAt, before.FiredAt, after.FiredAt)
	}
	if !after.LastTrueAt.After(before.LastTrueAt) {
		t.Errorf("last_true_at %s did not advance past %s: the condition was not evaluated after the reloads",
			after.LastTrueAt, before.LastTrueAt)
	}

	// Removing the check is the one reload that resolves its alert.
	other := strings.Replace(downConfig(down.URL, rcv.URL(), 150*time.Millisecond, "c", 0.6),
		"checks: [api]", "checks: [other]", 1)
	other = strings.Replace(other, "  - name: api\n", "  - name: other\n", 1)
	writeFile(t, cfgFile, other)
	if err := r.d.Reload(); err != nil {
		t.Fatalf("reload without the check: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "the resolution of the removed check's alert", func() error {
		for _, a := range apiDown() {
			if a.Status == "resolved" && a.Labels["check"] == "api" {
				return nil
			}
		}
		return fmt.Errorf("notifications:%s", describe(alertsOf(rcv.Messages())))
	})
}

// TestReloadKeepsFiringAlertResolveAll: the same for a check whose nodes
// come from DNS (`resolve: all`): a reload that changes the timeout keeps
// the nodes it knew until DNS answers again, so lb2's failing alert keeps
// firing.
func TestReloadKeepsFiringAlertResolveAll(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	rcv := startReceiver(t)
	config := func(timeout time.Duration) string {
		return shop.ConfigWithOptions(demo.ConfigOptions{Interval: 500 * time.Millisecond, Timeout: timeout,
			NoAlerts: true, NoAltPath: true}) + fmt.Sprintf(`
notifiers:
  - {name: room, type: webhook, url: %q, repeat_interval: 30m}
alerts:
  - name: ShopNodeFailing
    checks: [shop-home]
    when: failures > 0
    window: 4s
    severity: page
`, rcv.URL())
	}
	cfgFile := writeConfig(t, config(400*time.Millisecond))
	r := startDaemon(t, daemon.Options{ConfigFile: cfgFile, StoragePath: t.TempDir(),
		Notifiers: kinds.Notifiers(), EvalInterval: 200 * time.Millisecond})
	setFault(t, shop, "lb2:error_ratio=1")
	waitAlerts(t, rcv, lb2, 1, 30*time.Second)

	writeFile(t, cfgFile, config(450*time.Millisecond))
	if err := r.d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	time.Sleep(3 * time.Second) // fifteen evaluations, several runs of the rebuilt targets
	if got := forNode(alertsOf(rcv.Messages()), lb2); len(got) != 1 || got[0].Status != "firing" {
		t.Fatalf("notifications about lb2 across a reload while it failed throughout, want the one FIRING:%s", describe(got))
	}
	for _, inst := range r.d.Alerts().Engine().Instances() {
		if inst.Labels["node"] == lb2 && (inst.State != alerting.Firing || inst.FiredCount() != 1) {
			t.Errorf("%s: state %s, fired_count %d; want firing, 1", inst.Key, inst.State, inst.FiredCount())
		}
	}
}
