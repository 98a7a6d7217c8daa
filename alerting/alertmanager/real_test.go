package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

const amBinary = "/usr/bin/prometheus-alertmanager"

// startAlertmanager runs Debian's Alertmanager on a free loopback port,
// with clustering off (it would otherwise listen on 0.0.0.0:9094).
func startAlertmanager(t *testing.T) string {
	t.Helper()
	testenv.Binary(t, amBinary, "prometheus-alertmanager")
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, amBinary,
		"--config.file="+conf,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", logs.String())
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("alertmanager exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready at %s: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
