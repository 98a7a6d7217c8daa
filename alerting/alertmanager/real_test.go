package alertmanager_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// startAlertmanager runs Debian's Alertmanager, routing nowhere.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	return testenv.Alertmanager(t, "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
}

type gettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func listAlerts(t *testing.T, base, query string) []gettableAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET alerts: %s", resp.Status)
	}
	var out []gettableAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRealAlertmanager(t *testing.T) {
	base := startAlertmanager(t)
	now := time.Now().UTC().Truncate(time.Second)
	n := newNotifier(t, cfgFor(base), func() time.Time { return now })
	fire := firing(now.Add(-time.Minute))

	if err := n.Send(context.Background(), []alerting.Notification{fire}); err != nil {
		t.Fatalf("firing: %v", err)
	}
	got := listAlerts(t, base, "")
	if len(got) != 1 {
		t.Fatalf("alertmanager has %d alerts, want 1: %+v", len(got), got)
	}
	a := got[0]
	for k, v := range map[string]string{"alertname": "LoadBalancerNodeDegraded", "check": "shop-home",
		"path": "direct", "node": "127.0.0.12", "location": "fra1", "severity": "warning"} {
		if a.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, a.Labels[k], v)
		}
	}
	if len(a.Labels) != 6 {
		t.Errorf("labels %v", a.Labels)
	}
	for k, v := range map[string]string{"fired_count": "3", "flapping": "true",
		"first_fired_at": fire.Instance.Annotations["first_fired_at"], "summary": fire.Instance.Annotations["summary"]} {
		if a.Annotations[k] != v {
			t.Errorf("annotation %s=%q, want %q", k, a.Annotations[k], v)
		}
	}
	if !a.StartsAt.Equal(fire.StartsAt) || !a.EndsAt.Equal(now.Add(n.Lease())) {
		t.Errorf("startsAt %s endsAt %s", a.StartsAt, a.EndsAt)
	}
	if a.Status.State == "" || a.Status.State == "resolved" {
		t.Errorf("state %q", a.Status.State)
	}

	// Resolve: an endsAt in the past is Alertmanager's "resolved".
	res := resolvedAt(fire, now.Add(-time.Second))
	if err := n.Send(context.Background(), []alerting.Notification{res}); err != nil {
		t.Fatalf("resolved: %v", err)
	}
	if left := listAlerts(t, base, "?active=true"); len(left) != 0 {
		t.Errorf("alert still active after resolve: %+v", left)
	}
	if left := listAlerts(t, base, ""); len(left) != 0 {
		t.Errorf("alertmanager still lists the resolved alert: %+v", left)
	}
}

// An alert Alertmanager rejects (invalid label name) is a permanent error
// carrying Alertmanager's explanation. Alertmanager validates alert by
// alert: the valid alert posted in the same request is stored all the
// same (docs/notifiers.md says so).
func TestRealAlertmanagerRejects(t *testing.T) {
	base := startAlertmanager(t)
	n := newNotifier(t, cfgFor(base), nil)
	good := firing(time.Now().Add(-time.Minute))
	bad := firing(time.Now().Add(-time.Minute))
	bad.Instance.Labels = map[string]string{"alertname": "X", "bad-label": "v"}
	err := n.Send(context.Background(), []alerting.Notification{good, bad})
	var se *alerting.SendError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !se.Permanent || !alerting.IsPermanent(err) {
		t.Fatalf("want a permanent 400 SendError, got %T %v", err, err)
	}
	// Alertmanager's own words, in the error people and the timeline see.
	const why = `invalid label set: invalid name \"bad-label\"`
	if !strings.Contains(se.Body, why) || !strings.Contains(err.Error(), "receiver answered 400: ") || !strings.Contains(err.Error(), why) {
		t.Errorf("want Alertmanager's explanation %s in the error, got body %q, error %q", why, se.Body, err)
	}
	if got := listAlerts(t, base, ""); len(got) != 1 || got[0].Labels["alertname"] != "LoadBalancerNodeDegraded" {
		t.Errorf("alertmanager lists %+v, want the valid alert of the request", got)
	}

	// An end before the start is refused the same way, which is why
	// Alerts never sends one.
	body := `[{"labels":{"alertname":"Backwards"},"startsAt":"2026-03-14T21:40:00Z","endsAt":"2026-03-14T21:39:00Z"}]`
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "start time must be before end time") {
		t.Errorf("an alert ending before it starts: %s %s, want 400 \"start time must be before end time\"", resp.Status, msg)
	}
}

// A base URL with Alertmanager's route prefix (and a trailing slash) is
// where the alerts arrive: Alertmanager under --web.route-prefix accepts
// and lists them.
func TestRealAlertmanagerRoutePrefix(t *testing.T) {
	host := testenv.Alertmanager(t, "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n", "--web.route-prefix="+secret)
	n := newNotifier(t, cfgFor(host+secret+"/"), nil)
	if err := n.Send(context.Background(), []alerting.Notification{firing(time.Now().Add(-time.Minute))}); err != nil {
		t.Fatalf("send under the route prefix: %v", err)
	}
	if got := listAlerts(t, host+secret, ""); len(got) != 1 || got[0].Labels["alertname"] != "LoadBalancerNodeDegraded" {
		t.Errorf("alertmanager under %s lists %+v, want the alert", secret, got)
	}
}

// startRoutingAlertmanager runs Alertmanager grouping by alertname into a
// webhook at hook (a real receiver for Alertmanager's notifications, not
// a stand-in for Alertmanager), sending resolved groups too, with waits
// short enough for a test.
func startRoutingAlertmanager(t *testing.T, hook string) string {
	return testenv.Alertmanager(t, testenv.WebhookAlertmanagerConfig(hook, []string{"alertname"}, time.Second))
}

// onNode is the sample firing notification for node, whose episode
// started at start, fired count times.
func onNode(start time.Time, node string, count int) alerting.Notification {
	n := firing(start)
	n.Instance.Key = "LoadBalancerNodeDegraded|node=" + node
	labels := map[string]string{}
	for k, v := range n.Instance.Labels {
		labels[k] = v
	}
	labels["node"] = node
	ann := map[string]string{}
	for k, v := range n.Instance.Annotations {
		ann[k] = v
	}
	ann["fired_count"] = fmt.Sprint(count)
	n.Instance.Labels, n.Instance.Annotations = labels, ann
	return n
}

// What vantage sends groups as Alertmanager's routing says: two nodes'
// alerts of one rule are one group, one notification; a re-send with new
// flap memory (fired_count, an annotation) is the same alert, not a new
// one; and once vantage resolves both, the group's resolved notification
// follows.
func TestRealAlertmanagerGroupsAndResolves(t *testing.T) {
	hook := notifytest.NewReceiver(t, nil)
	base := startRoutingAlertmanager(t, hook.URL)
	n := newNotifier(t, cfgFor(base), nil)
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	lb1, lb2 := onNode(start, "lb1", 1), onNode(start, "lb2", 1)
	if err := n.Send(context.Background(), []alerting.Notification{lb1, lb2}); err != nil {
		t.Fatal(err)
	}
	// Flap memory changes an annotation, never the labels.
	if err := n.Send(context.Background(), []alerting.Notification{onNode(start, "lb2", 2)}); err != nil {
		t.Fatal(err)
	}
	// The alerts started a minute ago, so Alertmanager may flush the group
	// as soon as its first alert is in (group_wait is over) and send lb2
	// a group_interval later, with lb1 again: wait for the notification
	// of the group holding both.
	var msgs []webhook.Message
	var m webhook.Message
	testenv.Eventually(t, 30*time.Second, "alertmanager's notification of the group of both nodes", func() error {
		msgs = hook.Messages(t)
		for _, msg := range msgs {
			if !maps.Equal(msg.GroupLabels, map[string]string{"alertname": "LoadBalancerNodeDegraded"}) || msg.Status != "firing" {
				t.Fatalf("want firing notifications of the group by alertname, got %+v", msg)
			}
			if len(msg.Alerts) == 2 {
				m = msg
				return nil
			}
		}
		return fmt.Errorf("%d notifications, none of both nodes", len(msgs))
	})
	byNode := map[string]webhook.Alert{}
	for _, a := range m.Alerts {
		byNode[a.Labels["node"]] = a
	}
	if len(byNode) != 2 || !byNode["lb1"].StartsAt.Equal(start) || !byNode["lb2"].StartsAt.Equal(start) {
		t.Errorf("the group's alerts, want lb1 and lb2 since %s: %+v", start, m.Alerts)
	}
	// (Which fired_count the first group notification carries depends on
	// whether the re-send beat Alertmanager's group_wait; the list is
	// current.)
	got := listAlerts(t, base, "")
	if len(got) != 2 {
		t.Fatalf("alertmanager lists %d alerts, want 2 (the re-send is the same alert): %+v", len(got), got)
	}
	for _, a := range got {
		if want := map[string]string{"lb1": "1", "lb2": "2"}[a.Labels["node"]]; a.Annotations["fired_count"] != want {
			t.Errorf("%s: fired_count %q, want %q (the latest send)", a.Labels["node"], a.Annotations["fired_count"], want)
		}
	}

	now := time.Now().UTC()
	if err := n.Send(context.Background(), []alerting.Notification{resolvedAt(lb1, now), resolvedAt(lb2, now)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "alertmanager's resolved notification", func() error {
		msgs = hook.Messages(t)
		last := msgs[len(msgs)-1]
		if last.Status != "resolved" {
			return fmt.Errorf("last notification %s", last.Status)
		}
		if len(last.Alerts) != 2 {
			t.Fatalf("resolved group has %d alerts, want 2: %+v", len(last.Alerts), last)
		}
		return nil
	})
	if left := listAlerts(t, base, "?active=true"); len(left) != 0 {
		t.Errorf("alerts still active after resolve: %+v", left)
	}
}

// A firing alert carries a lease (endsAt) of LeaseFactor resend
// intervals: when vantage stops re-sending (it died), Alertmanager
// resolves the alert itself once the lease runs out, and says so.
func TestRealAlertmanagerLeaseRunsOut(t *testing.T) {
	hook := notifytest.NewReceiver(t, nil)
	base := startRoutingAlertmanager(t, hook.URL)
	cfg := cfgFor(base)
	cfg.ResendInterval = model.Duration(time.Second) // a 4s lease
	n := newNotifier(t, cfg, nil)
	sent := time.Now()
	if err := n.Send(context.Background(), []alerting.Notification{onNode(sent.Add(-time.Minute), "lb2", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := listAlerts(t, base, "?active=true"); len(got) != 1 {
		t.Fatalf("want the alert active right after sending, got %+v", got)
	}
	testenv.Eventually(t, 30*time.Second, "alertmanager resolving the alert without a re-send", func() error {
		msgs := hook.Messages(t)
		if len(msgs) == 0 || msgs[len(msgs)-1].Status != "resolved" {
			return errors.New("no resolved notification yet")
		}
		return nil
	})
	if held := time.Since(sent); held < n.Lease() {
		t.Errorf("alertmanager resolved the alert after %s, before its %s lease ran out", held, n.Lease())
	}
	if left := listAlerts(t, base, "?active=true"); len(left) != 0 {
		t.Errorf("still active after the lease: %+v", left)
	}
}
