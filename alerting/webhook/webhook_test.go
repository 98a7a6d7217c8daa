package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
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
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/checks"
)

// secretPath stands for the token an incoming-webhook URL carries.
const secretPath = "/hooks/T0001/B0002/s3cr3tT0k3n"

// secrets are the parts of the URL no error may show.
var secrets = []string{secretPath, "s3cr3tT0k3n", "T0001/B0002"}

var resolved = notifytest.ResolvedAt

func firing() alerting.Notification { return notifytest.Firing(notifytest.FiredAt) }

func resolvedN() alerting.Notification { return notifytest.Resolved(firing(), resolved) }

// other is a second, unrelated alert, to exercise the common sets.
func other() alerting.Notification {
	n := firing()
	n.Instance.Labels["node"] = "127.0.0.13"
	n.Instance.Annotations["summary"] = "another node"
	return n
}

func cfgFor(url string) checks.Notifier { return notifytest.Config("production-room", "webhook", url) }

func newNotifier(t *testing.T, cfg checks.Notifier) *webhook.Notifier {
	return notifytest.New(t, webhook.New, cfg, alerting.NotifierOptions{Logger: zerolog.Nop(), Version: "1.2.3", ExternalURL: "http://vantage.example:9115"})
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
			rc := notifytest.NewReceiver(t, nil)
			n := newNotifier(t, cfgFor(rc.URL+secretPath))
			if err := n.Send(context.Background(), tc.batch); err != nil {
				t.Fatal(err)
			}
			reqs := rc.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Path != secretPath {
				t.Errorf("posted to %q", r.Path)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if ua := r.Header.Get("User-Agent"); ua != "vantage/1.2.3" {
				t.Errorf("User-Agent %q", ua)
			}
			notifytest.Golden(t, tc.name, r.Body)
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
	rc := notifytest.NewReceiver(t, nil)
	cfg := cfgFor(rc.URL + secretPath)
	no := false
	cfg.SendResolved = &no
	n := newNotifier(t, cfg)
	if err := n.Send(context.Background(), []alerting.Notification{resolvedN()}); err != nil {
		t.Fatalf("only-resolved batch: %v", err)
	}
	if got := len(rc.Requests()); got != 0 {
		t.Fatalf("only-resolved batch made %d requests, want none", got)
	}
	if err := n.Send(context.Background(), []alerting.Notification{resolvedN(), other()}); err != nil {
		t.Fatal(err)
	}
	reqs := rc.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	if bytes.Contains(reqs[0].Body, []byte(`"resolved"`)) || !bytes.Contains(reqs[0].Body, []byte("127.0.0.13")) {
		t.Errorf("body %s", reqs[0].Body)
	}
}

func TestClassification(t *testing.T) {
	notifytest.Classify(t, []notifytest.Classification{
		{Name: "200 html", OK: true, Handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>thanks</body></html>")
		}},
		{Name: "204", OK: true, Handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }},
		{Name: "500", Status: 500, Body: "database on fire", Handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "database on fire", 500)
		}},
		{Name: "503", Status: 503, Handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }},
		{Name: "429", Status: 429, Body: "slow down", Handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "slow down", 429)
		}},
		{Name: "400 with body", Status: 400, Permanent: true, Body: `{"error":"bad payload"}`, Handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"bad payload"}`)
		}},
		{Name: "404 echoing the url", Status: 404, Permanent: true, Body: "no hook at <secret>", Handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			_, _ = io.WriteString(w, "no hook at "+r.URL.Path)
		}},
		{Name: "400 huge body", Status: 400, Permanent: true, Body: strings.Repeat("x", 512), Handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
		}},
		{Name: "302 redirect", Status: 302, Handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				t.Error("redirect was followed")
			}
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}},
		{Name: "307 redirect", Status: 307, Handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				t.Error("redirect was followed")
			}
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}},
	}, func(t *testing.T, base string) error {
		return newNotifier(t, cfgFor(base+secretPath)).Send(context.Background(), []alerting.Notification{firing()})
	}, secrets...)
}

func noSecret(t *testing.T, err error) {
	t.Helper()
	notifytest.NoLeak(t, err, secrets...)
}

func TestSlowReceiverTimesOut(t *testing.T) {
	rc := notifytest.NewReceiver(t, notifytest.Stall(5*time.Second))
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
	rc := notifytest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request) {
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
	rc := notifytest.NewReceiver(t, nil)
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
	rc := notifytest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request) {
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
		_, err := webhook.New(cfgFor(u), alerting.NotifierOptions{})
		if err == nil {
			t.Errorf("%q accepted", u)
			continue
		}
		noSecret(t, err)
	}
	cfg := cfgFor("http://127.0.0.1:1" + secretPath)
	cfg.HTTPConfig.BasicAuth = &config.BasicAuth{Username: "a"}
	cfg.HTTPConfig.BearerToken = "b"
	if _, err := webhook.New(cfg, alerting.NotifierOptions{}); err == nil || !strings.Contains(err.Error(), "http_config") {
		t.Errorf("conflicting auth: %v", err)
	}
}

func TestParentContextCancelled(t *testing.T) {
	rc := notifytest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	n := newNotifier(t, cfgFor(rc.URL+secretPath))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := n.Send(ctx, []alerting.Notification{firing()})
	if err == nil || alerting.IsPermanent(err) {
		t.Fatalf("want retryable error, got %v", err)
	}
	noSecret(t, err)
}

// TestEchoedTokenFormsRedacted: a receiver that echoes the hook's token
// JSON-escaped, URL-encoded or bare, or right where the kept part of its
// body is cut, shows none of it.
func TestEchoedTokenFormsRedacted(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		body       func(r *http.Request) string
	}{
		{"forms", `{"url":"http:\/\/host<secret>","path":"<secret>","token":"<secret>"}`, func(r *http.Request) string {
			return `{"url":"http:\/\/host` + strings.ReplaceAll(r.URL.Path, "/", `\/`) + `","path":"` +
				strings.ReplaceAll(r.URL.Path, "/", "%2F") + `","token":"s3cr3tT0k3n"}`
		}},
		{"at the cut", strings.Repeat("x", 505) + "<secret", func(*http.Request) string {
			return strings.Repeat("x", 505) + "s3cr3tT0k3n is not a hook"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := notifytest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, tc.body(r))
			})
			err := newNotifier(t, cfgFor(rc.URL+secretPath)).Send(context.Background(), []alerting.Notification{firing()})
			notifytest.CheckSendError(t, err, 400, true, tc.want)
			notifytest.NoLeak(t, err, append(secrets, "s3cr", "T0001", "B0002")...)
		})
	}
}
