package daemon_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe/probeutil/testcert"
)

// The README's promises about the daemon's HTTP side and its figures, one
// test each.

// TestReadyOnlyAfterFirstConfigApplied: /-/ready answers 503 until the
// first config is applied (the daemon is built, its config loaded, but not
// running: no target scheduled yet), while /-/healthy already answers
// 200; once Run has applied the config, 200 with the targets in place.
func TestReadyOnlyAfterFirstConfigApplied(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `checks:
  - name: nothing
    type: tcp
    address: 127.0.0.1:9
    interval: 1h
`)
	log := testLogger(t)
	d, err := daemon.New(daemon.Options{ConfigFile: cfg, Logger: log, Kinds: kinds.Registry(), Probers: kinds.Probers(log, nil)})
	if err != nil {
		t.Fatalf("daemon.New: %v", err)
	}
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		d.Web().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "config not applied yet") {
		t.Errorf("/-/ready before the config is applied: %d %q, want 503 saying why", code, body)
	}
	if code, _ := get("/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy before the config is applied: %d, want 200", code)
	}
	if n := len(d.Scheduler().Targets()); n != 0 {
		t.Fatalf("%d targets scheduled before Run; the test's premise is gone", n)
	}

	r := runDaemon(t, d)
	testenv.Eventually(t, 20*time.Second, "ready over the network", func() error {
		code, body := r.do(t, http.MethodGet, "/-/ready", nil)
		if code != http.StatusOK {
			return fmt.Errorf("%d: %s", code, body)
		}
		// Ready means applied: the check's target is scheduled.
		if n := len(d.Scheduler().Targets()); n != 1 {
			t.Fatalf("ready with %d targets scheduled, want 1", n)
		}
		return nil
	})
}

// TestWebConfigTLS: with tls_server_config in --web.config.file (the
// exporter-toolkit format docs/deployment.md shows), every endpoint is
// served over TLS with the configured certificate, to a real TLS client
// that trusts it; plain HTTP and a client that does not trust the
// certificate get nothing.
func TestWebConfigTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testcert.NewCA(t)
	leaf := ca.Leaf(t, time.Now().Add(24*time.Hour), "127.0.0.1")
	certFile, keyFile := testcert.WriteLeaf(t, dir, leaf)
	pool := ca.Pool()
	webCfg := filepath.Join(dir, "web.yml")
	writeFile(t, webCfg, fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile))
	cfg := writeConfig(t, `checks:
  - name: nothing
    type: tcp
    address: 127.0.0.1:9
    interval: 1h
`)
	logs := &syncBuffer{}
	r := startDaemon(t, daemon.Options{ConfigFile: cfg, WebConfigFile: webCfg, Logger: zerolog.New(logs)})
	base := "https://" + strings.TrimPrefix(r.base, "http://")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(client.CloseIdleConnections)
	for _, c := range []struct{ path, want string }{
		{"/-/ready", "vantage is ready."},
		{"/-/healthy", "vantage is healthy."},
		{"/metrics", "vantage_build_info"},
		{"/api/v1/checks", `"nothing"`},
	} {
		resp, err := client.Get(base + c.path)
		if err != nil {
			t.Fatalf("GET %s over TLS: %v", c.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), c.want) {
			t.Errorf("GET %s over TLS: %s, want 200 with %q:\n%.300s", c.path, resp.Status, c.want, body)
		}
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, leaf.Certificate[0]) {
			t.Errorf("GET %s: not served with the configured certificate: %+v", c.path, resp.TLS)
		}
	}

	// Plain HTTP: Go's TLS server answers 400 and serves nothing.
	code, body := r.do(t, http.MethodGet, "/metrics", nil)
	if code != http.StatusBadRequest || strings.Contains(body, "vantage_build_info") {
		t.Errorf("plain HTTP to the TLS port: %d, want 400 and no metrics:\n%.300s", code, body)
	}
	// A client that does not trust the certificate refuses it.
	untrusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(untrusting.CloseIdleConnections)
	_, err := untrusting.Get(base + "/metrics")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client without the CA: %v, want an unknown-authority error", err)
	}
	// The failed handshake is in the daemon's own log (not on stderr).
	testenv.Eventually(t, 10*time.Second, "the handshake error logged", func() error {
		if !strings.Contains(logs.String(), "TLS handshake error") {
			return fmt.Errorf("daemon log has no TLS handshake error:\n%s", logs.String())
		}
		return nil
	})
}

// summaryOf is the single summary of name whose labels include want.
func summaryOf(t *testing.T, e exposition, name string, want map[string]string) *dto.Summary {
	t.Helper()
	ms := e.series(name, want)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(ms))
	}
	return ms[0].GetSummary()
}

// TestFastErrorsDoNotPullQuantilesDown: a target that answered in about
// 200 ms starts refusing connections (errors in well under a millisecond);
// the burst of errors shows in the runs counter and the success gauge, but
// the latency quantiles, the duration histogram and the summary's count
// hold only the successful runs: p50 stays at least 200 ms.
func TestFastErrorsDoNotPullQuantilesDown(t *testing.T) {
	t.Parallel()
	const latency = 200 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	cfg := writeConfig(t, fmt.Sprintf(`global: {interval: 500ms, timeout: 450ms}
checks:
  - name: api
    type: http
    url: http://%s/
`, l.Addr()))
	r := startDaemon(t, daemon.Options{ConfigFile: cfg})
	check := lbl("check", "api", "window", "5m")
	runs := func(e exposition, result string) float64 {
		v, _ := e.value(t, "vantage_check_runs_total", lbl("check", "api", "result", result))
		return v
	}

	var before exposition
	testenv.Eventually(t, time.Minute, "5 successful runs", func() error {
		before = r.scrape(t)
		if n := runs(before, "success"); n < 5 {
			return fmt.Errorf("%v successful runs", n)
		}
		return nil
	})
	_ = srv.Close() // from now on every run is refused at once
	testenv.Eventually(t, time.Minute, "a burst of refused runs", func() error {
		_, err := http.Get("http://" + l.Addr().String() + "/")
		if err == nil {
			t.Fatal("the closed server still answers")
		}
		if n := runs(r.scrape(t), "error"); n < 20 {
			return fmt.Errorf("%v error runs", n)
		}
		return nil
	})
	after := r.scrape(t)
	if v, _ := after.value(t, "vantage_check_success", lbl("check", "api")); v != 0 {
		t.Errorf("vantage_check_success = %v after the errors, want 0", v)
	}
	successes := runs(after, "success")
	if errs := runs(after, "error"); errs < 2*successes {
		t.Fatalf("%v errors after %v successes: not the burst the test needs", errs, successes)
	}
	s := summaryOf(t, after, "vantage_check_duration_quantile_seconds", check)
	if float64(s.GetSampleCount()) != successes {
		t.Errorf("quantile summary counts %d runs, want the %v successful ones", s.GetSampleCount(), successes)
	}
	if len(s.GetQuantile()) == 0 {
		t.Fatal("no quantiles in the summary")
	}
	for _, q := range s.GetQuantile() {
		if q.GetValue() < latency.Seconds()*0.99 { // the sketch's 1% error
			t.Errorf("quantile %g = %.3fs after the burst of errors, want >= %s", q.GetQuantile(), q.GetValue(), latency)
		}
	}
	if _, n, ok := after.hist(t, "vantage_check_duration_seconds", lbl("check", "api")); !ok || float64(n) != successes {
		t.Errorf("duration histogram counts %d runs (present %v), want the %v successful ones", n, ok, successes)
	}
	t.Logf("%v successes, then %v errors; p50 %.3fs", successes, runs(after, "error"), s.GetQuantile()[0].GetValue())
}
