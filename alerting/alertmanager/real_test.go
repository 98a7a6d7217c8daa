package alertmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
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
// carrying Alertmanager's explanation.
func TestRealAlertmanagerRejects(t *testing.T) {
	base := startAlertmanager(t)
	n := newNotifier(t, cfgFor(base), nil)
	bad := firing(time.Now().Add(-time.Minute))
	bad.Instance.Labels = map[string]string{"alertname": "X", "bad-label": "v"}
	err := n.Send(context.Background(), []alerting.Notification{bad})
	if !alerting.IsPermanent(err) {
		t.Fatalf("want permanent error, got %v", err)
	}
	t.Logf("alertmanager said: %v", fmt.Sprint(err))
}
