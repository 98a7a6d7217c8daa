package metrics_test

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/internal/expo/expotest"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/browser"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// The check series streamed into the Encoder must say what registering
// the Collector and encoding with expfmt says (helpers of package
// expotest).

// collectorFixture is a Collector with http (two steps, TLS cert), tcp and
// browser targets, label values that need escaping, and a forgotten target.
func collectorFixture(t *testing.T) *metrics.Collector {
	t.Helper()
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Global.Location = "ams1"
	cfg.Global.Labels = map[string]string{"team": `web"shop\` + "\nü"}
	cfg.Checks = []checks.Check{
		{Name: "shop-home", Type: "http", Labels: map[string]string{"route": "home"}},
		{Name: "cdn", Type: "tcp", Labels: map[string]string{"team": "cdn"}},
		{Name: "web", Type: "browser", Spec: &browser.Config{}},
		{Name: "gone", Type: "http"},
	}
	direct, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	a := &probe.Target{Key: "shop-home/direct/lb2", Check: &cfg.Checks[0], Path: direct,
		Node: &probe.Node{Name: "lb2", Addr: netip.MustParseAddr("10.0.0.12")}}
	a3 := &probe.Target{Key: "shop-home/direct/10.0.0.13", Check: &cfg.Checks[0], Path: direct,
		Node: &probe.Node{Addr: netip.MustParseAddr("10.0.0.13")}}
	b := &probe.Target{Key: "cdn/direct/", Check: &cfg.Checks[1], Path: direct}
	w := &probe.Target{Key: "web/direct/", Check: &cfg.Checks[2], Path: direct}
	gone := &probe.Target{Key: "gone/direct/", Check: &cfg.Checks[3], Path: direct}

	c := metrics.New(cfg)
	steps := []probe.StepResult{
		{Name: "login", StatusCode: 200, Phases: probe.Phases{DNS: 3 * time.Millisecond, HasDNS: true,
			Connect: time.Millisecond, TLS: 2 * time.Millisecond, HasTLS: true, Processing: 100 * time.Millisecond, Transfer: 5 * time.Millisecond}},
		{Name: "cart \"2\"", StatusCode: 302, Phases: probe.Phases{Connect: time.Millisecond, Processing: 7 * time.Millisecond}},
	}
	for i := range 40 {
		for _, tg := range []*probe.Target{a, a3} {
			c.Observe(&probe.Observation{Target: tg, Up: true, Outcome: &probe.Outcome{
				Result: probe.Success, Duration: time.Duration(i+1) * 7 * time.Millisecond,
				CertNotAfter: time.Unix(1900000000, 0), Steps: steps}})
		}
	}
	c.Observe(&probe.Observation{Target: a3, Up: true, Outcome: &probe.Outcome{Result: probe.Failure, Reason: "status"}})
	for _, r := range []probe.Result{probe.Error, probe.Timeout, probe.Failure, probe.Error} {
		c.Observe(&probe.Observation{Target: b, Up: false, Outcome: &probe.Outcome{Result: r}})
	}
	c.Observe(&probe.Observation{Target: w, Up: true, Outcome: &probe.Outcome{
		Result: probe.Success, Duration: time.Second,
		Steps: []probe.StepResult{
			{Name: "01-navigate", Result: probe.Success, Duration: 300 * time.Millisecond,
				Navigation: &probe.NavTiming{TTFB: 3 * time.Millisecond, DOMContentLoaded: 200 * time.Millisecond,
					Load: 250 * time.Millisecond, LCP: 400 * time.Millisecond}},
			{Name: "02-click", Result: probe.Failure, Duration: 50 * time.Millisecond},
		},
		Requests: []probe.Request{
			{Domain: "www.shop.test", Result: "ok", Status: 200, Duration: 10 * time.Millisecond},
			{Domain: "www.shop.test", Result: "ok", Status: 200, Duration: 30 * time.Millisecond},
			{Domain: "static.shop-cdn.test", Result: "http_error", Status: 503, Duration: 5 * time.Millisecond},
			{Domain: "ads.example", Result: "failed"},
		},
	}})
	c.Observe(&probe.Observation{Target: gone, Up: true, Outcome: &probe.Outcome{Result: probe.Success, Steps: steps,
		CertNotAfter: time.Unix(1800000000, 0)}})
	c.Forget(gone)
	return c
}

var collectorFamilies = []string{
	"vantage_browser_navigation_seconds", "vantage_browser_request_duration_seconds",
	"vantage_browser_requests_total", "vantage_browser_step_duration_seconds",
	"vantage_check_duration_seconds", "vantage_check_runs_total", "vantage_check_success",
	"vantage_check_up", "vantage_http_phase_seconds", "vantage_http_status_code",
	"vantage_tls_cert_not_after_timestamp_seconds",
}

// TestCollectorStreamMatchesRegistry: Collector.Stream into the Encoder
// says what registering the Collector and encoding with expfmt says, with
// and without a name filter.
func TestCollectorStreamMatchesRegistry(t *testing.T) {
	c := collectorFixture(t)
	all := expotest.Gather(t, c)
	if g := expotest.FamilyNames(all); !slices.Equal(g, collectorFamilies) {
		t.Fatalf("gathered %v, want %v", g, collectorFamilies)
	}
	if m := expotest.FindMetric(all, "vantage_check_runs_total", "node", "lb2"); m == nil || m.GetCounter() == nil {
		t.Fatal("fixture has no runs counter for lb2")
	}
	filters := []struct {
		name  string
		names []string
	}{
		{"all", nil},
		{"some", []string{"vantage_check_up", "vantage_http_phase_seconds", "vantage_check_duration_seconds",
			"vantage_browser_requests_total", "vantage_browser_step_duration_seconds"}},
		{"one", []string{"vantage_tls_cert_not_after_timestamp_seconds"}},
		{"foreign", []string{"go_goroutines"}},
	}
	for _, fl := range filters {
		var want func(string) bool
		if fl.names != nil {
			want = func(n string) bool { return slices.Contains(fl.names, n) }
		}
		gathered := expotest.FilterFamilies(all, want)
		for _, wf := range expotest.WireFormats {
			t.Run(fl.name+"/"+wf.Name, func(t *testing.T) {
				got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) { c.Stream(e, want) })
				mfs := expotest.CheckEquivalent(t, wf.Format, got, expotest.Expfmt(t, wf.Format, gathered), gathered)
				for _, mf := range mfs {
					if want != nil && !want(mf.GetName()) {
						t.Errorf("family %s was not asked for", mf.GetName())
					}
				}
				if len(mfs) != len(gathered) {
					t.Errorf("%d families, want %d", len(mfs), len(gathered))
				}
			})
		}
	}
}

// TestCollectorStreamSparse: families without samples (no cert, no steps,
// no browser runs) appear in neither output; no targets means no output.
func TestCollectorStreamSparse(t *testing.T) {
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Checks = []checks.Check{{Name: "cdn", Type: "tcp"}}
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	c := metrics.New(cfg)
	for _, wf := range expotest.WireFormats {
		got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) { c.Stream(e, nil) })
		if want := expotest.Expfmt(t, wf.Format, nil); !bytes.Equal(got, want) {
			t.Errorf("%s: no targets wrote %q, expfmt %q", wf.Name, got, want)
		}
	}
	c.Observe(&probe.Observation{Target: &probe.Target{Key: "cdn/direct/", Check: &cfg.Checks[0], Path: p},
		Outcome: &probe.Outcome{Result: probe.Error}})
	gathered := expotest.Gather(t, c)
	wantNames := []string{"vantage_check_duration_seconds", "vantage_check_runs_total", "vantage_check_success", "vantage_check_up"}
	if g := expotest.FamilyNames(gathered); !slices.Equal(g, wantNames) {
		t.Fatalf("gathered %v, want %v", g, wantNames)
	}
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) { c.Stream(e, nil) })
			expotest.CheckEquivalent(t, wf.Format, got, expotest.Expfmt(t, wf.Format, gathered), gathered)
			for _, n := range []string{"vantage_http_", "vantage_tls_", "vantage_browser_"} {
				if bytes.Contains(got, []byte(n)) {
					t.Errorf("%s* written without samples", n)
				}
			}
		})
	}
}
