package metrics_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

func setup(t *testing.T) (*checks.Config, *probe.Target, *probe.Target) {
	t.Helper()
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Global.Location = "ams1"
	cfg.Global.Labels = map[string]string{"team": "webshop"}
	cfg.Checks = []checks.Check{
		{Name: "shop-home", Type: "http", Labels: map[string]string{"route": "home"}},
		{Name: "cdn", Type: "tcp", Labels: map[string]string{"team": "cdn"}},
	}
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	a := &probe.Target{Key: "shop-home/direct/lb2", Check: &cfg.Checks[0], Path: p,
		Node: &probe.Node{Name: "lb2", Addr: netip.MustParseAddr("10.0.0.12")}}
	b := &probe.Target{Key: "cdn/direct/", Check: &cfg.Checks[1], Path: p}
	return cfg, a, b
}

func TestLabelsAndSeries(t *testing.T) {
	cfg, a, b := setup(t)
	c := metrics.New(cfg)
	want := []string{"check", "type", "path", "node", "location", "route", "team"}
	if got := c.Labeler().Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("label names %v, want %v", got, want)
	}
	// A check label overrides the global one; missing labels are empty.
	if got := c.Labeler().Values(b); strings.Join(got, ",") != "cdn,tcp,direct,,ams1,,cdn" {
		t.Fatalf("values for cdn: %v", got)
	}
	c.Observe(&probe.Observation{Target: a, Up: true, Outcome: &probe.Outcome{
		Result: probe.Success, Duration: 120 * time.Millisecond, CertNotAfter: time.Unix(1900000000, 0),
		Steps: []probe.StepResult{{Name: "", StatusCode: 200, Phases: probe.Phases{
			Connect: time.Millisecond, TLS: 2 * time.Millisecond, HasTLS: true, Processing: 100 * time.Millisecond}}},
	}})
	c.Observe(&probe.Observation{Target: b, Up: false, Outcome: &probe.Outcome{Result: probe.Error, Reason: "refused"}})

	exp := `
# HELP vantage_check_up 1 when the target is UP after down_after/up_after hysteresis, else 0.
# TYPE vantage_check_up gauge
vantage_check_up{check="cdn",location="ams1",node="",node_address="",path="direct",route="",team="cdn",type="tcp"} 0
vantage_check_up{check="shop-home",location="ams1",node="lb2",node_address="10.0.0.12",path="direct",route="home",team="webshop",type="http"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "vantage_check_up"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, mf := range mfs {
		names[mf.GetName()] = len(mf.GetMetric())
	}
	// dns was not measured (no HasDNS), tls was: 4 phases for one step.
	if names["vantage_http_phase_seconds"] != 4 {
		t.Errorf("phase series = %d, want 4 (connect, tls, processing, transfer)", names["vantage_http_phase_seconds"])
	}
	if names["vantage_check_runs_total"] != 8 {
		t.Errorf("runs series = %d, want 2 targets x 4 results", names["vantage_check_runs_total"])
	}
	if names["vantage_tls_cert_not_after_timestamp_seconds"] != 1 {
		t.Errorf("cert series = %d, want 1", names["vantage_tls_cert_not_after_timestamp_seconds"])
	}

	c.Forget(a)
	// cdn keeps up, success, its duration histogram and 4 runs counters.
	if n := testutil.CollectAndCount(c); n != 7 {
		t.Fatalf("after Forget %d series remain, want 7 (only cdn's)", n)
	}
	if n := testutil.CollectAndCount(c, "vantage_http_phase_seconds"); n != 0 {
		t.Fatalf("phase series of a forgotten target remain: %d", n)
	}
}

func TestConfigureSwapsLabelSet(t *testing.T) {
	cfg, a, _ := setup(t)
	c := metrics.New(cfg)
	c.Observe(&probe.Observation{Target: a, Up: true, Outcome: &probe.Outcome{Result: probe.Success}})
	c.Configure(cfg) // same labels: series stay
	if n := testutil.CollectAndCount(c, "vantage_check_up"); n != 1 {
		t.Fatalf("series after same-config Configure = %d, want 1", n)
	}
	cfg2 := *cfg
	cfg2.Global.Location = "fra1"
	c.Configure(&cfg2)
	if n := testutil.CollectAndCount(c, "vantage_check_up"); n != 0 {
		t.Fatalf("old-label series survived a label change: %d", n)
	}
	c.Observe(&probe.Observation{Target: a, Up: true, Outcome: &probe.Outcome{Result: probe.Success}})
	if v := c.Labeler().Values(a)[4]; v != "fra1" {
		t.Fatalf("location = %q, want fra1", v)
	}
}
