package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/browser"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

func TestBrowserSeriesAndDomainCap(t *testing.T) {
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Global.MaxDomainsPerCheck = 2
	cfg.Checks = []checks.Check{{Name: "web", Type: "browser", Spec: &browser.Config{}}}
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	tg := &probe.Target{Key: "web/direct/", Check: &cfg.Checks[0], Path: p}
	c := metrics.New(cfg)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.Observe(&probe.Observation{Target: tg, Up: true, Outcome: &probe.Outcome{
		Result: probe.Success, Duration: time.Second,
		Steps: []probe.StepResult{
			{Name: "01-navigate", Result: probe.Success, Duration: 300 * time.Millisecond,
				Navigation: &probe.NavTiming{TTFB: 3 * time.Millisecond, DOMContentLoaded: 200 * time.Millisecond, Load: 250 * time.Millisecond}},
			{Name: "02-click", Result: probe.Success, Duration: 50 * time.Millisecond},
		},
		Requests: []probe.Request{
			{Domain: "www.shop.test", Result: "ok", Status: 200, Duration: 10 * time.Millisecond},
			{Domain: "static.shop-cdn.test", Result: "http_error", Status: 503, Duration: 5 * time.Millisecond},
			{Domain: "ads.example", Result: "failed"},
			{Domain: "more.example", Result: "blocked"},
		},
	}})
	exp := `
# HELP vantage_browser_requests_total Requests made by browser runs, by domain and result (ok, http_error, failed, blocked).
# TYPE vantage_browser_requests_total counter
vantage_browser_requests_total{check="web",domain="other",node="",path="direct",result="blocked",type="browser"} 1
vantage_browser_requests_total{check="web",domain="other",node="",path="direct",result="failed",type="browser"} 1
vantage_browser_requests_total{check="web",domain="static.shop-cdn.test",node="",path="direct",result="http_error",type="browser"} 1
vantage_browser_requests_total{check="web",domain="www.shop.test",node="",path="direct",result="ok",type="browser"} 1
# HELP vantage_browser_navigation_seconds Navigation Timing figures (ttfb, dom_content_loaded, load) and Largest Contentful Paint of each navigation in the last run.
# TYPE vantage_browser_navigation_seconds gauge
vantage_browser_navigation_seconds{check="web",node="",path="direct",step="01-navigate",timing="dom_content_loaded",type="browser"} 0.2
vantage_browser_navigation_seconds{check="web",node="",path="direct",step="01-navigate",timing="load",type="browser"} 0.25
vantage_browser_navigation_seconds{check="web",node="",path="direct",step="01-navigate",timing="ttfb",type="browser"} 0.003
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "vantage_browser_requests_total", "vantage_browser_navigation_seconds"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "vantage_browser_step_duration_seconds"); n != 2 {
		t.Fatalf("step histograms: %d, want 2", n)
	}
	if n := testutil.CollectAndCount(c, "vantage_browser_request_duration_seconds"); n != 2 {
		t.Fatalf("request duration histograms: %d, want 2 (ok and http_error only)", n)
	}
	c.Forget(tg)
	for _, name := range []string{"vantage_browser_requests_total", "vantage_browser_navigation_seconds",
		"vantage_browser_step_duration_seconds", "vantage_browser_request_duration_seconds"} {
		if n := testutil.CollectAndCount(c, name); n != 0 {
			t.Errorf("%s: %d series left after Forget", name, n)
		}
	}
}
