package webhook_test

import (
	"bytes"
	"context"
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
	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/checks"
)

// secretPath stands for the token an incoming-webhook URL carries.
const secretPath = "/hooks/T0001/B0002/s3cr3tT0k3n"

var (
	t0       = time.Date(2026, 3, 14, 21, 2, 0, 0, time.UTC)
	firedAt  = time.Date(2026, 3, 14, 21, 40, 0, 0, time.UTC)
	resolved = time.Date(2026, 3, 14, 21, 47, 0, 0, time.UTC)
)

func labels() map[string]string {
	return map[string]string{"alertname": "LoadBalancerNodeDegraded", "check": "shop-home", "path": "direct",
		"node": "127.0.0.12", "location": "fra1", "severity": "warning", "empty": ""}
}

func firing() alerting.Notification {
	return alerting.Notification{
		Status: "firing", StartsAt: firedAt,
		GeneratorURL: "http://vantage.example:9115/alerts?key=LoadBalancerNodeDegraded",
		Instance: alerting.Instance{
			Key: "LoadBalancerNodeDegraded|check=shop-home|node=127.0.0.12|path=direct", Rule: "LoadBalancerNodeDegraded",
			Labels: labels(), State: alerting.Firing, Value: 4.2, FiredAt: firedAt,
			Fired: []time.Time{t0, t0.Add(18 * time.Minute), firedAt},
			Annotations: map[string]string{"summary": "shop-home node 127.0.0.12 is 4.2x slower than its peers",
				"fired_count": "3", "first_fired_at": "2026-03-14T21:02:00Z", "flapping": "true"},
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

// other is a second, unrelated alert, to exercise the common sets.
func other() alerting.Notification {
	n := firing()
	n.Instance.Labels["node"] = "127.0.0.13"
	n.Instance.Annotations["summary"] = "another node"
	return n
}

type request struct {
	path   string
	header http.Header
	body   []byte
}

// receiver is a real HTTP receiver recording what it got.
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
	return checks.Notifier{Name: "production-room", Type: "webhook", URL: url,
		Timeout: model.Duration(2 * time.Second), HTTPConfig: config.DefaultHTTPClientConfig}
}

func newNotifier(t *testing.T, cfg checks.Notifier) *webhook.Notifier {
	t.Helper()
	n, err := webhook.New(cfg, webhook.Options{Logger: zerolog.Nop(), Version: "1.2.3", ExternalURL: "http://vantage.example:9115"})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		var b bytes.Buffer
		if err := jsonIndent(&b, got); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := jsonIndent(&b, got); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, got)
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
		{"mixed.json", []alerting.Notification{resolvedN(), other()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			n := newNotifier(t, cfgFor(rc.URL+secretPath))
			if err := n.Send(context.Background(), tc.batch); err != nil {
				t.Fatal(err)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.path != secretPath {
				t.Errorf("posted to %q", r.path)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if ua := r.header.Get("User-Agent"); ua != "vantage/1.2.3" {
				t.Errorf("User-Agent %q", ua)
			}
			golden(t, tc.name, r.body)
		})
	}
}

func TestMessageSemantics(t *testing.T) {
	m := webhook.BuildMessage("room", "http://x", []alerting.Notification{resolvedN(), other()})
	if m.Status != "firing" {
		t.Errorf("status %q, want firing when any alert fires", m.Status)
	}
	if m.CommonLabels["node"] != "" || m.CommonLabels["check"] != "shop-home" {
		t.Errorf("common labels %v", m.CommonLabels)
	}
	if _, ok := m.Alerts[0].Labels["empty"]; ok {
		t.Error("empty label kept")
	}
	want := model.LabelSet{"alertname": "LoadBalancerNodeDegraded", "check": "shop-home", "path": "direct",
		"node": "127.0.0.12", "location": "fra1", "severity": "warning"}.Fingerprint().String()
	if m.Alerts[0].Fingerprint != want {
		t.Errorf("fingerprint %s, want %s", m.Alerts[0].Fingerprint, want)
	}
	if !m.Alerts[1].EndsAt.IsZero() || !m.Alerts[0].EndsAt.Equal(resolved) {
		t.Errorf("endsAt firing %v resolved %v", m.Alerts[1].EndsAt, m.Alerts[0].EndsAt)
	}
	if m.GroupKey != `{}:{alertname="LoadBalancerNodeDegraded"}` {
		t.Errorf("groupKey %s", m.GroupKey)
	}
}

func TestSendResolvedFalse(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := cfgFor(rc.URL + secretPath)
	no := false
	cfg.SendResolved = &no
	n := newNotifier(t, cfg)
	if err := n.Send(context.Background(), []alerting.Notification{resolvedN()}); err != nil {
		t.Fatalf("only-resolved batch: %v", err)
	}
	if got := len(rc.requests()); got != 0 {
		t.Fatalf("only-resolved batch made %d requests, want none", got)
	}
	if err := n.Send(context.Background(), []alerting.Notification{resolvedN(), other()}); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	if bytes.Contains(reqs[0].body, []byte(`"resolved"`)) || !bytes.Contains(reqs[0].body, []byte("127.0.0.13")) {
		t.Errorf("body %s", reqs[0].body)
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
			_, _ = io.WriteString(w, "<html><body>thanks</body></html>")
		}},
		{name: "204", ok: true, handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }},
		{name: "500", status: 500, body: "database on fire", handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "database on fire", 500)
		}},
		{name: "503", status: 503, handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }},
		{name: "429", status: 429, body: "slow down", handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "slow down", 429)
		}},
		{name: "400 with body", status: 400, permanent: true, body: `{"error":"bad payload"}`, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"bad payload"}`)
		}},
		{name: "404 echoing the url", status: 404, permanent: true, body: "no hook at <secret>", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			_, _ = io.WriteString(w, "no hook at "+r.URL.Path)
		}},
		{name: "400 huge body", status: 400, permanent: true, body: strings.Repeat("x", 512), handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
		}},
		{name: "302 redirect", status: 302, handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				t.Error("redirect was followed")
			}
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}},
		{name: "307 redirect", status: 307, handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				t.Error("redirect was followed")
			}
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.handler)
			n := newNotifier(t, cfgFor(rc.URL+secretPath))
			err := n.Send(context.Background(), []alerting.Notification{firing()})
			if tc.ok {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			var se *alerting.SendError
			if !errors.As(err, &se) {
				t.Fatalf("want *SendError, got %T %v", err, err)
			}
			if se.Status != tc.status || se.Permanent != tc.permanent || alerting.IsPermanent(err) != tc.permanent {
				t.Errorf("status %d permanent %v, want %d %v", se.Status, se.Permanent, tc.status, tc.permanent)
			}
			if tc.body != "" && se.Body != tc.body {
				t.Errorf("body %q, want %q", se.Body, tc.body)
			}
			noSecret(t, err)
			if len(rc.requests()) != 1 {
				t.Errorf("%d requests, want exactly one attempt", len(rc.requests()))
			}
		})
	}
}

func noSecret(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{secretPath, "s3cr3tT0k3n", "T0001/B0002"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error leaks the URL: %v", err)
		}
	}
}

func TestSlowReceiverTimesOut(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cfg := cfgFor(rc.URL + secretPath)
	cfg.Timeout = model.Duration(200 * time.Millisecond)
	n := newNotifier(t, cfg)
	start := time.Now()
	err := n.Send(context.Background(), []alerting.Notification{firing()})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s, timeout not applied", took)
	}
	if err == nil || alerting.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want retryable timeout, got %v", err)
	}
	if !strings.Contains(err.Error(), "timeout") {
		t.Errorf("error does not say timeout: %v", err)
	}
	noSecret(t, err)
}

func TestSlowBodyTimesOut(t *testing.T) {
	// Headers arrive at once, then the body of an error response trickles.
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		w.(http.Flusher).Flush()
		for range 50 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
				_, _ = io.WriteString(w, "x")
				w.(http.Flusher).Flush()
			}
		}
	})
	cfg := cfgFor(rc.URL + secretPath)
	cfg.Timeout = model.Duration(300 * time.Millisecond)
	n := newNotifier(t, cfg)
	start := time.Now()
	err := n.Send(context.Background(), []alerting.Notification{firing()})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s, body read not bounded by the timeout", took)
	}
	if err == nil || alerting.IsPermanent(err) {
		t.Fatalf("want retryable error, got %v", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	rc := newReceiver(t, nil)
	url := rc.URL + secretPath
	rc.Close()
	n := newNotifier(t, cfgFor(url))
	err := n.Send(context.Background(), []alerting.Notification{firing()})
	var se *alerting.SendError
	if !errors.As(err, &se) || se.Permanent || se.Status != 0 {
		t.Fatalf("want retryable network SendError, got %v", err)
	}
	if !strings.Contains(err.Error(), "http://127.0.0.1:") {
		t.Errorf("error should name scheme and host: %v", err)
	}
	noSecret(t, err)
}

func TestAuthFromHTTPConfig(t *testing.T) {
	var mu sync.Mutex
	var got []string
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if u, p, ok := r.BasicAuth(); ok {
			got = append(got, "basic "+u+":"+p)
		} else {
			got = append(got, r.Header.Get("Authorization"))
		}
	})
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	basic := cfgFor(rc.URL + secretPath)
	basic.HTTPConfig.BasicAuth = &config.BasicAuth{Username: "vantage", Password: "hunter2"}
	basicFile := cfgFor(rc.URL + secretPath)
	basicFile.HTTPConfig.BasicAuth = &config.BasicAuth{Username: "vantage", PasswordFile: pwFile}
	bearer := cfgFor(rc.URL + secretPath)
	bearer.HTTPConfig.BearerToken = "tok-123"
	authz := cfgFor(rc.URL + secretPath)
	authz.HTTPConfig.Authorization = &config.Authorization{Credentials: "tok-456"}
	for _, cfg := range []checks.Notifier{basic, basicFile, bearer, authz} {
		if err := newNotifier(t, cfg).Send(context.Background(), []alerting.Notification{firing()}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"basic vantage:hunter2", "basic vantage:from-file", "Bearer tok-123", "Bearer tok-456"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("receiver saw %q, want %q", got, want)
	}
	if authz.HTTPConfig.Authorization.Type != "" {
		t.Error("New mutated the shared http_config")
	}
}

func TestBadConfig(t *testing.T) {
	for _, u := range []string{"", "ftp://host" + secretPath, "not a url" + secretPath, "http://" + secretPath[:0]} {
		_, err := webhook.New(cfgFor(u), webhook.Options{})
		if err == nil {
			t.Errorf("%q accepted", u)
			continue
		}
		noSecret(t, err)
	}
	cfg := cfgFor("http://127.0.0.1:1" + secretPath)
	cfg.HTTPConfig.BasicAuth = &config.BasicAuth{Username: "a"}
	cfg.HTTPConfig.BearerToken = "b"
	if _, err := webhook.New(cfg, webhook.Options{}); err == nil || !strings.Contains(err.Error(), "http_config") {
		t.Errorf("conflicting auth: %v", err)
	}
}

func TestParentContextCancelled(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	n := newNotifier(t, cfgFor(rc.URL+secretPath))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := n.Send(ctx, []alerting.Notification{firing()})
	if err == nil || alerting.IsPermanent(err) {
		t.Fatalf("want retryable error, got %v", err)
	}
	noSecret(t, err)
}
