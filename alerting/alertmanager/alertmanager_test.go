package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/alertmanager"
	"github.com/vantage-monitoring/vantage/checks"
)

const secret = "/am/s3cr3t-prefix"

var (
	t0       = time.Date(2026, 3, 14, 21, 2, 0, 0, time.UTC)
	firedAt  = time.Date(2026, 3, 14, 21, 40, 0, 0, time.UTC)
	sendAt   = time.Date(2026, 3, 14, 21, 41, 0, 0, time.UTC)
	resolved = time.Date(2026, 3, 14, 21, 47, 0, 0, time.UTC)
)

func firing(start time.Time) alerting.Notification {
	return alerting.Notification{
		Status: "firing", StartsAt: start,
		GeneratorURL: "http://vantage.example:9115/alerts?key=LoadBalancerNodeDegraded",
		Instance: alerting.Instance{
			Key: "LoadBalancerNodeDegraded|check=shop-home|node=127.0.0.12|path=direct", Rule: "LoadBalancerNodeDegraded",
			Labels: map[string]string{"alertname": "LoadBalancerNodeDegraded", "check": "shop-home", "path": "direct",
				"node": "127.0.0.12", "location": "fra1", "severity": "warning", "empty": ""},
			State: alerting.Firing, Value: 4.2, FiredAt: start,
			Fired: []time.Time{start.Add(-38 * time.Minute), start.Add(-20 * time.Minute), start},
			Annotations: map[string]string{"summary": "shop-home node 127.0.0.12 is 4.2x slower than its peers",
				"fired_count": "3", "first_fired_at": start.Add(-38 * time.Minute).UTC().Format(time.RFC3339), "flapping": "true"},
		},
	}
}

func resolvedAt(n alerting.Notification, end time.Time) alerting.Notification {
	n.Status, n.EndsAt = "resolved", end
	n.Instance.State, n.Instance.ResolvedAt = alerting.Resolved, end
	ann := map[string]string{}
	for k, v := range n.Instance.Annotations {
		ann[k] = v
	}
	ann["resolution"] = "resolved after 7m; fired 3 times in the last 1h"
	n.Instance.Annotations = ann
	return n
}

type request struct {
	path   string
	header http.Header
	body   []byte
}

type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{path: r.URL.Path, header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func cfgFor(url string) checks.Notifier {
	return checks.Notifier{Name: "alertmanager", Type: "alertmanager", URL: url,
		ResendInterval: model.Duration(time.Minute),
		Timeout:        model.Duration(2 * time.Second), HTTPConfig: config.DefaultHTTPClientConfig}
}

func newNotifier(t *testing.T, cfg checks.Notifier, now func() time.Time) *alertmanager.Notifier {
	t.Helper()
	n, err := alertmanager.New(cfg, alertmanager.Options{Logger: zerolog.Nop(), Version: "1.2.3", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var b bytes.Buffer
	if err := json.Indent(&b, got, "", "  "); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, got)
	}
	b.WriteByte('\n')
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("payload differs from %s:\ngot:\n%s\nwant:\n%s", path, b.String(), want)
	}
}

func TestPayloadGolden(t *testing.T) {
	now := func() time.Time { return sendAt }
	for _, tc := range []struct {
		name  string
		batch []alerting.Notification
	}{
		{"firing.json", []alerting.Notification{firing(firedAt)}},
		{"resolved.json", []alerting.Notification{resolvedAt(firing(firedAt), resolved)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			// A trailing slash on the base URL must not double up.
			n := newNotifier(t, cfgFor(rc.URL+secret+"/"), now)
			if err := n.Send(context.Background(), tc.batch); err != nil {
				t.Fatal(err)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests", len(reqs))
			}
			if want := secret + "/api/v2/alerts"; reqs[0].path != want {
				t.Errorf("posted to %q, want %q", reqs[0].path, want)
			}
			if ct := reqs[0].header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			golden(t, tc.name, reqs[0].body)
		})
	}
}

func TestLeaseAndEndpoint(t *testing.T) {
	cfg := cfgFor("http://127.0.0.1:9093/api/v2/alerts")
	cfg.ResendInterval = model.Duration(2 * time.Minute)
	n := newNotifier(t, cfg, nil)
	if n.Lease() != 8*time.Minute {
		t.Errorf("lease %s, want 4x resend interval", n.Lease())
	}
	a := alertmanager.Alerts([]alerting.Notification{firing(firedAt)}, sendAt, n.Lease())
	if !a[0].EndsAt.Equal(sendAt.Add(8 * time.Minute)) {
		t.Errorf("firing endsAt %s", a[0].EndsAt)
	}
	if _, ok := a[0].Labels["empty"]; ok {
		t.Error("empty label sent (Alertmanager drops it; fingerprints would differ)")
	}
	// A resolved notification without an end time ends now, never before it started.
	r := resolvedAt(firing(firedAt), time.Time{})
	r.Instance.ResolvedAt = time.Time{}
	a = alertmanager.Alerts([]alerting.Notification{r}, sendAt, n.Lease())
	if !a[0].EndsAt.Equal(sendAt) {
		t.Errorf("resolved endsAt %s, want now", a[0].EndsAt)
	}
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc
		ok        bool
		status    int
		permanent bool
		body      string
	}{
		{name: "200 html", ok: true, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><title>Alertmanager</title></html>")
		}},
		{name: "500", status: 500, body: "boom", handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) }},
		{name: "429", status: 429, handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }},
		{name: "400", status: 400, permanent: true, body: `{"code":400,"message":"start time must be before end time"}`,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"code":400,"message":"start time must be before end time"}`)
			}},
		{name: "301", status: 301, handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.handler)
			n := newNotifier(t, cfgFor(rc.URL+secret), nil)
			err := n.Send(context.Background(), []alerting.Notification{firing(firedAt)})
			if tc.ok {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			var se *alerting.SendError
			if !errors.As(err, &se) {
				t.Fatalf("want *SendError, got %v", err)
			}
			if se.Status != tc.status || se.Permanent != tc.permanent {
				t.Errorf("status %d permanent %v, want %d %v", se.Status, se.Permanent, tc.status, tc.permanent)
			}
			if tc.body != "" && se.Body != tc.body {
				t.Errorf("body %q, want %q", se.Body, tc.body)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error leaks the URL: %v", err)
			}
			if got := len(rc.requests()); got != 1 {
				t.Errorf("%d requests, want one attempt", got)
			}
		})
	}
}

func TestSlowAlertmanager(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cfg := cfgFor(rc.URL + secret)
	cfg.Timeout = model.Duration(200 * time.Millisecond)
	start := time.Now()
	err := newNotifier(t, cfg, nil).Send(context.Background(), []alerting.Notification{firing(firedAt)})
	if time.Since(start) > 2*time.Second || err == nil || alerting.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want retryable timeout within bound, got %v after %s", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error leaks the URL: %v", err)
	}
}

func TestBasicAuthReachesAlertmanager(t *testing.T) {
	var user, pass string
	var mu sync.Mutex
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		user, pass, _ = r.BasicAuth()
	})
	cfg := cfgFor(rc.URL)
	cfg.HTTPConfig.BasicAuth = &config.BasicAuth{Username: "am", Password: "pw"}
	if err := newNotifier(t, cfg, nil).Send(context.Background(), []alerting.Notification{firing(firedAt)}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if user != "am" || pass != "pw" {
		t.Errorf("receiver saw basic auth %q:%q", user, pass)
	}
}
