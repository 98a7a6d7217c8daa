package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/alerting/slack"
	"github.com/vantage-monitoring/vantage/checks"
)

const secretPath = "/services/T0001/B0002/s3cr3tT0k3n"

var (
	firedAt  = notifytest.FiredAt
	resolved = notifytest.ResolvedAt
	now      = time.Date(2026, 3, 14, 21, 48, 0, 0, time.UTC)
)

// firing is the shared sample with a runbook link, and a second query
// parameter in the status page link to exercise link escaping.
func firing() alerting.Notification {
	n := notifytest.Firing(firedAt)
	n.GeneratorURL += "&x=1"
	n.Instance.Annotations["runbook_url"] = "https://runbooks.example/lb-node"
	return n
}

func resolvedN() alerting.Notification { return notifytest.Resolved(firing(), resolved) }

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

// slackOK answers as Slack does when it accepts a message.
func slackOK(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func cfgFor(url string) checks.Notifier { return notifytest.Config("chat", "slack", url) }

func newNotifier(t *testing.T, cfg checks.Notifier) *slack.Notifier {
	return notifytest.New(t, slack.New, cfg, alerting.NotifierOptions{Logger: zerolog.Nop(), Now: func() time.Time { return now }})
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
			rc := notifytest.NewReceiver(t, slackOK)
			if err := newNotifier(t, cfgFor(rc.URL+secretPath)).Send(context.Background(), tc.batch); err != nil {
				t.Fatal(err)
			}
			got := rc.Bodies()
			if len(got) != 1 {
				t.Fatalf("%d messages, want one per batch", len(got))
			}
			notifytest.Golden(t, tc.name, got[0])
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
	rc := notifytest.NewReceiver(t, slackOK)
	cfg := cfgFor(rc.URL + secretPath)
	no := false
	cfg.SendResolved = &no
	if err := newNotifier(t, cfg).Send(context.Background(), []alerting.Notification{resolvedN()}); err != nil {
		t.Fatal(err)
	}
	if len(rc.Bodies()) != 0 {
		t.Error("resolved notice sent with send_resolved: false")
	}
}

func TestClassification(t *testing.T) {
	notifytest.Classify(t, []notifytest.Classification{
		{Name: "200 html", OK: true, Handler: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "<html>ok</html>")
		}},
		{Name: "500", Status: 500, Handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }},
		{Name: "429", Status: 429, Handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }},
		// What Slack answers for a revoked hook.
		{Name: "403 no_service", Status: 403, Permanent: true, Body: "no_service", Handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(403)
			_, _ = io.WriteString(w, "no_service")
		}},
		{Name: "400 invalid_blocks", Status: 400, Permanent: true, Body: "invalid_blocks", Handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, "invalid_blocks")
		}},
		{Name: "308 redirect", Status: 308, Handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"/v2", http.StatusPermanentRedirect)
		}},
	}, func(t *testing.T, base string) error {
		return newNotifier(t, cfgFor(base+secretPath)).Send(context.Background(), []alerting.Notification{firing()})
	}, "s3cr3t", "T0001")
}

func TestSlowReceiver(t *testing.T) {
	rc := notifytest.NewReceiver(t, notifytest.Stall(5*time.Second))
	cfg := cfgFor(rc.URL + secretPath)
	cfg.Timeout = model.Duration(200 * time.Millisecond)
	start := time.Now()
	err := newNotifier(t, cfg).Send(context.Background(), []alerting.Notification{firing()})
	if time.Since(start) > 2*time.Second || !errors.Is(err, context.DeadlineExceeded) || alerting.IsPermanent(err) {
		t.Fatalf("want retryable timeout, got %v after %s", err, time.Since(start))
	}
	notifytest.NoLeak(t, err, "s3cr3t")
}

func TestBearerReachesReceiver(t *testing.T) {
	var mu sync.Mutex
	var auth string
	rc := notifytest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request) {
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

// TestNodePageWording: a node alert with folded per-check alerts is one
// message naming the node by name and address, the checks and paths that
// show it and since when, and what was folded into it.
func TestNodePageWording(t *testing.T) {
	n := notifytest.Firing(firedAt)
	n.Instance.Labels = map[string]string{"alertname": "LoadBalancerNodeDegraded", "node": "lb2", "location": "fra1"}
	n.Instance.Measure = "node_slowdown"
	n.Instance.Annotations["node_address"] = "127.0.0.12"
	n.Instance.Annotations["affected"] = "app-checkout via alt-source, shop-home via direct"
	n.Instance.Annotations["active_since"] = firedAt.Add(-45 * time.Second).Format(time.RFC3339)
	n.Instance.Annotations["folded"] = "ShopSlowForCustomers shop-home via direct: p99 = 2.1s"
	n.Instance.Annotations["node_p90"], n.Instance.Annotations["siblings_p90"] = "912ms", "104ms"
	m := slack.Render([]alerting.Notification{n}, now, time.Hour)
	for _, want := range []string{
		"[FIRING] LoadBalancerNodeDegraded — node lb2 (127.0.0.12) (value 4.2)\n",
		"\np90 912ms vs 104ms on its siblings\nAffected since 21:39 UTC: app-checkout via alt-source, shop-home via direct\n",
		"\nFolded into this page: ShopSlowForCustomers shop-home via direct: p99 = 2.1s\n",
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("node page lacks %q:\n%s", want, m.Text)
		}
	}
}
