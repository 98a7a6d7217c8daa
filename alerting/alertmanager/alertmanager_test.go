package alertmanager_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/alertmanager"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/checks"
)

const secret = "/am/s3cr3t-prefix"

var (
	firedAt  = notifytest.FiredAt
	sendAt   = time.Date(2026, 3, 14, 21, 41, 0, 0, time.UTC)
	resolved = notifytest.ResolvedAt
)

// The sample builders under the names real_test.go uses too.
var (
	firing     = notifytest.Firing
	resolvedAt = notifytest.Resolved
)

func cfgFor(url string) checks.Notifier {
	cfg := notifytest.Config("alertmanager", "alertmanager", url)
	cfg.ResendInterval = model.Duration(time.Minute)
	return cfg
}

func newNotifier(t *testing.T, cfg checks.Notifier, now func() time.Time) *alertmanager.Notifier {
	return notifytest.New(t, alertmanager.New, cfg, alerting.NotifierOptions{Logger: zerolog.Nop(), Version: "1.2.3", Now: now})
}

// The tests in this file are about vantage's own sending (the exact
// bytes, path and headers it posts, how it classifies an answer, its
// timeout, its credentials), so a recording receiver (notifytest) stands
// in for Alertmanager: it can answer 429, 500 or stall on demand, which
// the real one does not. What Alertmanager does with the payload
// (accepting, refusing, grouping, resolving) runs against Debian's
// Alertmanager in real_test.go.

// TestPayloadGolden: the bytes vantage posts. (That Alertmanager accepts
// them: TestRealAlertmanager and TestRealAlertmanagerRoutePrefix.)
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
			rc := notifytest.NewReceiver(t, nil)
			// A trailing slash on the base URL must not double up.
			n := newNotifier(t, cfgFor(rc.URL+secret+"/"), now)
			if err := n.Send(context.Background(), tc.batch); err != nil {
				t.Fatal(err)
			}
			reqs := rc.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests", len(reqs))
			}
			if want := secret + "/api/v2/alerts"; reqs[0].Path != want {
				t.Errorf("posted to %q, want %q", reqs[0].Path, want)
			}
			if ct := reqs[0].Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			notifytest.Golden(t, tc.name, reqs[0].Body)
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
	notifytest.Classify(t, []notifytest.Classification{
		{Name: "200 html", OK: true, Handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><title>Alertmanager</title></html>")
		}},
		{Name: "500", Status: 500, Body: "boom", Handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) }},
		{Name: "429", Status: 429, Handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }},
		{Name: "400", Status: 400, Permanent: true, Body: `{"code":400,"message":"start time must be before end time"}`,
			Handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"code":400,"message":"start time must be before end time"}`)
			}},
		{Name: "301", Status: 301, Handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
		}},
	}, func(t *testing.T, base string) error {
		return newNotifier(t, cfgFor(base+secret), nil).Send(context.Background(), []alerting.Notification{firing(firedAt)})
	}, "s3cr3t")
}

func TestSlowAlertmanager(t *testing.T) {
	rc := notifytest.NewReceiver(t, notifytest.Stall(5*time.Second))
	cfg := cfgFor(rc.URL + secret)
	cfg.Timeout = model.Duration(200 * time.Millisecond)
	start := time.Now()
	err := newNotifier(t, cfg, nil).Send(context.Background(), []alerting.Notification{firing(firedAt)})
	if time.Since(start) > 2*time.Second || err == nil || alerting.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want retryable timeout within bound, got %v after %s", err, time.Since(start))
	}
	notifytest.NoLeak(t, err, "s3cr3t")
}

// TestBasicAuthReachesAlertmanager: the credentials vantage sends. (The
// real Alertmanager checks them only behind its --web.config.file, whose
// readiness endpoint then needs them too; the recorder shows what arrived.)
func TestBasicAuthReachesAlertmanager(t *testing.T) {
	var user, pass string
	var mu sync.Mutex
	rc := notifytest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request) {
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
