package slack_test

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
	"github.com/vantage-monitoring/vantage/alerting/slack"
	"github.com/vantage-monitoring/vantage/checks"
)

const secretPath = "/services/T0001/B0002/s3cr3tT0k3n"

var (
	t0       = time.Date(2026, 3, 14, 21, 2, 0, 0, time.UTC)
	firedAt  = time.Date(2026, 3, 14, 21, 40, 0, 0, time.UTC)
	resolved = time.Date(2026, 3, 14, 21, 47, 0, 0, time.UTC)
	now      = time.Date(2026, 3, 14, 21, 48, 0, 0, time.UTC)
)

func firing() alerting.Notification {
	return alerting.Notification{
		Status: "firing", StartsAt: firedAt,
		GeneratorURL: "http://vantage.example:9115/alerts?key=LoadBalancerNodeDegraded&x=1",
		Instance: alerting.Instance{
			Rule: "LoadBalancerNodeDegraded",
			Labels: map[string]string{"alertname": "LoadBalancerNodeDegraded", "check": "shop-home", "path": "direct",
				"node": "127.0.0.12", "location": "fra1", "severity": "warning"},
			State: alerting.Firing, Value: 4.2, FiredAt: firedAt,
			Fired: []time.Time{t0, t0.Add(18 * time.Minute), firedAt},
			Annotations: map[string]string{"summary": "shop-home node 127.0.0.12 is 4.2x slower than its peers",
				"runbook_url": "https://runbooks.example/lb-node", "fired_count": "3",
				"first_fired_at": "2026-03-14T21:02:00Z", "flapping": "true"},
		},
	}
}

func resolvedN() alerting.Notification {
	n := firing()
	n.Status, n.EndsAt = "resolved", resolved
	n.Instance.State, n.Instance.ResolvedAt = alerting.Resolved, resolved
	n.Instance.Annotations["resolution"] = "resolved after 7m; fired 3 times in the last 1h"
	return n
}

func firstTime() alerting.Notification {
	n := firing()
	n.Instance.Labels["node"] = "127.0.0.13"
	n.Instance.Value = 3.14159
	n.Instance.Fired = []time.Time{firedAt}
	n.Instance.Annotations = map[string]string{"summary": "<!channel> & friends", "fired_count": "1",
		"first_fired_at": "2026-03-14T21:40:00Z"}
	n.GeneratorURL = ""
	return n
}

type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	paths  []string
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, body)
		rc.paths = append(rc.paths, r.URL.Path)
		rc.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok") // what Slack answers
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.bodies...)
}

func cfgFor(url string) checks.Notifier {
	return checks.Notifier{Name: "chat", Type: "slack", URL: url,
		Timeout: model.Duration(2 * time.Second), HTTPConfig: config.DefaultHTTPClientConfig}
}

func newNotifier(t *testing.T, cfg checks.Notifier) *slack.Notifier {
	t.Helper()
	n, err := slack.New(cfg, slack.Options{Logger: zerolog.Nop(), Now: func() time.Time { return now }})
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
	for _, tc := range []struct {
		name  string
		batch []alerting.Notification
	}{
		{"firing.json", []alerting.Notification{firing()}},
		{"resolved.json", []alerting.Notification{resolvedN()}},
		{"batch.json", []alerting.Notification{resolvedN(), firstTime()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			if err := newNotifier(t, cfgFor(rc.URL+secretPath)).Send(context.Background(), tc.batch); err != nil {
				t.Fatal(err)
			}
			got := rc.got()
			if len(got) != 1 {
				t.Fatalf("%d messages, want one per batch", len(got))
			}
			golden(t, tc.name, got[0])
		})
	}
}

// The words people read: node and path named, flap memory spelled out,
// resolution never a bare "recovered".
func TestWording(t *testing.T) {
	m := slack.Render([]alerting.Notification{firing()}, now, time.Hour)
	want := ":rotating_light: [FIRING] LoadBalancerNodeDegraded — shop-home via direct node 127.0.0.12 (value 4.2)\n" +
		"shop-home node 127.0.0.12 is 4.2x slower than its peers\n" +
		"fired 3 times in the last hour (flapping) — first at 21:02 UTC\n" +
		"<http://vantage.example:9115/alerts?key=LoadBalancerNodeDegraded&amp;x=1|Status page> · <https://runbooks.example/lb-node|Runbook>"
	if m.Text != want {
		t.Errorf("firing text:\n%s\nwant:\n%s", m.Text, want)
	}
	r := slack.Render([]alerting.Notification{resolvedN()}, now, time.Hour)
	if !strings.HasPrefix(r.Text, ":white_check_mark: [RESOLVED] LoadBalancerNodeDegraded — shop-home via direct node 127.0.0.12\nresolved after 7m; fired 3 times in the last 1h\n") {
		t.Errorf("resolved text:\n%s", r.Text)
	}
	// Without the engine's resolution annotation the notice still says how long and how often.
	bare := resolvedN()
	delete(bare.Instance.Annotations, "resolution")
	if r := slack.Render([]alerting.Notification{bare}, now, time.Hour); !strings.Contains(r.Text, "resolved after 7m; fired 3 times in the last hour") {
		t.Errorf("fallback resolution:\n%s", r.Text)
	}
	f := slack.Render([]alerting.Notification{firstTime()}, now, time.Hour)
	if !strings.Contains(f.Text, "(value 3.142)") || !strings.Contains(f.Text, "firing since 21:40 UTC (first time in the last hour)") {
		t.Errorf("first firing text:\n%s", f.Text)
	}
	if strings.Contains(f.Text, "<!channel>") || !strings.Contains(f.Text, "&lt;!channel&gt; &amp; friends") {
		t.Errorf("user text not escaped:\n%s", f.Text)
	}
}

func TestBatchIsBounded(t *testing.T) {
	var batch []alerting.Notification
	for range slack.MaxAlerts + 5 {
		batch = append(batch, firing())
	}
	m := slack.Render(batch, now, time.Hour)
	if len(m.Blocks) > 50 {
		t.Errorf("%d blocks, Slack allows 50", len(m.Blocks))
	}
	if !strings.HasPrefix(m.Text, ":rotating_light: [FIRING:25] LoadBalancerNodeDegraded") || !strings.HasSuffix(m.Text, "…and 5 more") {
		t.Errorf("text head/tail: %.80q … %q", m.Text, m.Text[len(m.Text)-20:])
	}
	long := firing()
	long.Instance.Annotations["summary"] = strings.Repeat("é", 5000)
	m = slack.Render([]alerting.Notification{long}, now, time.Hour)
	if n := len(m.Blocks[0].Text.Text); n > 3000 {
		t.Errorf("section of %d bytes", n)
	}
	if !json.Valid(mustJSON(t, m)) || !strings.HasSuffix(m.Blocks[0].Text.Text, "…") {
		t.Error("truncation broke the text")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendResolvedFalse(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := cfgFor(rc.URL + secretPath)
	no := false
	cfg.SendResolved = &no
	if err := newNotifier(t, cfg).Send(context.Background(), []alerting.Notification{resolvedN()}); err != nil {
		t.Fatal(err)
	}
	if len(rc.got()) != 0 {
		t.Error("resolved notice sent with send_resolved: false")
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
			_, _ = io.WriteString(w, "<html>ok</html>")
		}},
		{name: "500", status: 500, handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }},
		{name: "429", status: 429, handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }},
		// What Slack answers for a revoked hook.
		{name: "403 no_service", status: 403, permanent: true, body: "no_service", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(403)
			_, _ = io.WriteString(w, "no_service")
		}},
		{name: "400 invalid_blocks", status: 400, permanent: true, body: "invalid_blocks", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, "invalid_blocks")
		}},
		{name: "308 redirect", status: 308, handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"/v2", http.StatusPermanentRedirect)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.handler)
			err := newNotifier(t, cfgFor(rc.URL+secretPath)).Send(context.Background(), []alerting.Notification{firing()})
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
				t.Errorf("body %q", se.Body)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "T0001") {
				t.Errorf("error leaks the URL: %v", err)
			}
			if got := len(rc.got()); got != 1 {
				t.Errorf("%d requests, want one attempt", got)
			}
		})
	}
}

func TestSlowReceiver(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cfg := cfgFor(rc.URL + secretPath)
	cfg.Timeout = model.Duration(200 * time.Millisecond)
	start := time.Now()
	err := newNotifier(t, cfg).Send(context.Background(), []alerting.Notification{firing()})
	if time.Since(start) > 2*time.Second || !errors.Is(err, context.DeadlineExceeded) || alerting.IsPermanent(err) {
		t.Fatalf("want retryable timeout, got %v after %s", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error leaks the URL: %v", err)
	}
}

func TestBearerReachesReceiver(t *testing.T) {
	var mu sync.Mutex
	var auth string
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		auth = r.Header.Get("Authorization")
	})
	cfg := cfgFor(rc.URL + secretPath)
	cfg.HTTPConfig.Authorization = &config.Authorization{Type: "Bearer", Credentials: "mm-token"}
	if err := newNotifier(t, cfg).Send(context.Background(), []alerting.Notification{firing()}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if auth != "Bearer mm-token" {
		t.Errorf("Authorization %q", auth)
	}
}
