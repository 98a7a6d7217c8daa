package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
)

// The demo shop's nodes behind www.shop.test (demo.Options defaults).
var shopNodes = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}

// demoNodes are their names in the demo config (its node_names), the node
// label of every series from it.
var demoNodes = []string{"lb1", "lb2", "lb3"}

// The demo config's two network paths.
var shopPaths = []string{"direct", "alt-source"}

func startShop(t *testing.T) *demo.Shop {
	t.Helper()
	shop, err := demo.Start(t.Context(), demo.Options{
		Dir:    t.TempDir(),
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatalf("starting the demo shop: %v", err)
	}
	t.Cleanup(func() { _ = shop.Close() })
	return shop
}

// startReceiver runs the demo's webhook receiver on a free loopback port
// for the test.
func startReceiver(t *testing.T) *demo.Receiver {
	t.Helper()
	rcv, err := demo.StartReceiver("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rcv.Close() })
	return rcv
}

func setFault(t *testing.T, shop *demo.Shop, spec string) {
	t.Helper()
	target, f, err := demo.ParseFault(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := shop.SetFault(target, f); err != nil {
		t.Fatalf("SetFault(%s): %v", spec, err)
	}
}

// shopConfig is a config with the demo shop's two paths (both resolving
// through the shop's DNS and trusting its CA) and the given checks YAML.
func shopConfig(shop *demo.Shop, interval, timeout time.Duration, checksYAML string) string {
	return fmt.Sprintf(`global:
  interval: %s
  timeout: %s
  location: test
paths:
  - name: direct
    resolver: %s
    tls: {ca_file: %q}
  - name: alt-source
    source_ip: 127.0.0.2
    resolver: %s
    tls: {ca_file: %q}
checks:
%s`, model.Duration(interval), model.Duration(timeout), shop.DNSAddr(), shop.CAFile(),
		shop.DNSAddr(), shop.CAFile(), checksYAML)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vantage.yaml")
	writeFile(t, path, text)
	return path
}

// syncBuffer is a log sink that several goroutines may write to. Unlike
// testenv.LogBuffer it keeps everything: the secrets tests must see every
// line to prove no secret is in any of them.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// running is a daemon serving on a loopback port.
type running struct {
	d      *daemon.Daemon
	base   string
	client *http.Client
}

// startDaemon builds a daemon from o (filling Logger and Probers when
// unset) and runs it on 127.0.0.1:0 until the test ends.
func startDaemon(t *testing.T, o daemon.Options) *running {
	t.Helper()
	if reflect.ValueOf(o.Logger).IsZero() {
		o.Logger = testLogger(t)
	}
	if o.Kinds == nil {
		o.Kinds = kinds.Registry()
	}
	if o.Probers == nil {
		o.Probers = kinds.Probers(o.Logger, nil)
	}
	d, err := daemon.New(o)
	if err != nil {
		t.Fatalf("daemon.New: %v", err)
	}
	return runDaemon(t, d)
}

// runDaemon runs a built daemon on 127.0.0.1:0 until the test ends.
func runDaemon(t *testing.T, d *daemon.Daemon) *running {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancellation")
		}
	})
	r := &running{d: d, base: "http://" + l.Addr().String(), client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

// do sends a request and returns the status and body.
func (r *running) do(t *testing.T, method, path string, setup func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(req)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// exposition is one parsed /metrics scrape.
type exposition struct {
	text string
	fams map[string]*dto.MetricFamily
}

func (r *running) scrape(t *testing.T) exposition {
	t.Helper()
	code, body := r.do(t, http.MethodGet, "/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return exposition{text: body, fams: fams}
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func matches(m *dto.Metric, want map[string]string) bool {
	got := labelsOf(m)
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// series returns every sample of family name whose labels include want.
func (e exposition) series(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range e.fams[name].GetMetric() {
		if matches(m, want) {
			out = append(out, m)
		}
	}
	return out
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// value is the single sample of name matching want; ok is false when there
// is none, and the test fails when there are several.
func (e exposition) value(t *testing.T, name string, want map[string]string) (float64, bool) {
	t.Helper()
	ms := e.series(name, want)
	switch len(ms) {
	case 0:
		return 0, false
	case 1:
		return sampleValue(ms[0]), true
	}
	t.Fatalf("%s%v: %d series match, want at most one", name, want, len(ms))
	return 0, false
}

// hist returns the sum and count of the single histogram matching want.
func (e exposition) hist(t *testing.T, name string, want map[string]string) (sum float64, count uint64, ok bool) {
	t.Helper()
	ms := e.series(name, want)
	if len(ms) != 1 {
		return 0, 0, false
	}
	h := ms[0].GetHistogram()
	return h.GetSampleSum(), h.GetSampleCount(), true
}

// sumOf adds up every sample of name matching want.
func sumOf(e exposition, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range e.series(name, want) {
		sum += sampleValue(m)
	}
	return sum
}

// histBelow returns how many observations of the single histogram matching
// want were <= le (a bucket bound), and the total count.
func (e exposition) histBelow(t *testing.T, name string, want map[string]string, le float64) (below, count uint64) {
	t.Helper()
	ms := e.series(name, want)
	if len(ms) != 1 {
		return 0, 0
	}
	h := ms[0].GetHistogram()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount(), h.GetSampleCount()
		}
	}
	t.Fatalf("%s has no bucket le=%g", name, le)
	return 0, 0
}

// nodesOf lists the distinct node label values of name for want.
func (e exposition) nodesOf(name string, want map[string]string) []string {
	set := map[string]bool{}
	for _, m := range e.series(name, want) {
		set[labelsOf(m)["node"]] = true
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var errNotYet = errors.New("not yet")
