package metrics_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/internal/expo/expotest"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/browser"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// TestSlowScraperDoesNotBlockProbes: while a scrape is stuck writing to a
// client that does not read, every target's next run is still recorded
// (runs of existing targets and a new target's first run), for each
// family the scrape can be stuck in.
func TestSlowScraperDoesNotBlockProbes(t *testing.T) {
	for _, fam := range []string{"vantage_check_up", "vantage_check_duration_seconds", "vantage_http_phase_seconds"} {
		t.Run(fam, func(t *testing.T) {
			cfg := &checks.Config{Secrets: checks.NewRedactor()}
			const n = 3000
			for i := range n + 1 {
				cfg.Checks = append(cfg.Checks, checks.Check{Name: fmt.Sprintf("c%04d", i), Type: "http"})
			}
			p, err := netpath.New(checks.Path{Name: "direct"})
			if err != nil {
				t.Fatal(err)
			}
			targets := make([]*probe.Target, n+1)
			for i := range targets {
				targets[i] = &probe.Target{Key: cfg.Checks[i].Name + "/direct/", Check: &cfg.Checks[i], Path: p}
			}
			c := metrics.New(cfg)
			run := func(tg *probe.Target) {
				c.Observe(&probe.Observation{Target: tg, Up: true, Outcome: &probe.Outcome{Result: probe.Success,
					Duration: 3 * time.Millisecond, Steps: []probe.StepResult{{Name: "request", Result: probe.Success,
						StatusCode: 200, Phases: probe.Phases{Connect: time.Millisecond, Processing: time.Millisecond}}}}})
			}
			for _, tg := range targets[:n] {
				run(tg)
			}
			pr, pw := io.Pipe() // nobody reads until the runs below are done
			enc, _ := expo.NewEncoder(pw, expfmt.NewFormat(expfmt.TypeTextPlain))
			scraped := make(chan struct{})
			go func() {
				defer close(scraped)
				c.Stream(enc, func(name string) bool { return name == fam })
				_ = enc.Close()
				pw.Close()
			}()
			ran := make(chan struct{})
			go func() {
				defer close(ran)
				for _, tg := range targets {
					run(tg)
				}
			}()
			select {
			case <-ran:
			case <-time.After(60 * time.Second):
				t.Fatal("runs were not recorded within 60s while a scrape was stuck")
			}
			select {
			case <-scraped:
				t.Fatal("the scrape finished without a reader: it was never stuck, so the test shows nothing")
			default:
			}
			if _, err := io.Copy(io.Discard, pr); err != nil {
				t.Fatal(err)
			}
			<-scraped
		})
	}
}

// TestMetricsDetail: global.metrics drops the classic buckets (or the
// native ones) and the phase gauges from /metrics, and a reload back to
// the defaults brings them back with nothing lost.
func TestMetricsDetail(t *testing.T) {
	cfg, a, _ := setup(t)
	cfg.Global.Metrics = checks.DefaultMetricsDetail
	c := metrics.New(cfg)
	for i := range 5 {
		c.Observe(&probe.Observation{Target: a, Up: true, Outcome: &probe.Outcome{Result: probe.Success,
			Duration: time.Duration(i+1) * 10 * time.Millisecond, Steps: []probe.StepResult{{Name: "request", Result: probe.Success,
				StatusCode: 200, Phases: probe.Phases{Connect: time.Millisecond, Processing: time.Millisecond}}}}})
	}
	text := func() string {
		return string(expotest.Encode(t, expfmt.NewFormat(expfmt.TypeTextPlain), func(e *expo.Encoder) { c.Stream(e, nil) }))
	}
	histogram := func() *dto.Histogram {
		t.Helper()
		for _, mf := range expotest.Gather(t, c) {
			if mf.GetName() == "vantage_check_duration_seconds" {
				return mf.GetMetric()[0].GetHistogram()
			}
		}
		t.Fatal("no vantage_check_duration_seconds")
		return nil
	}
	full := text()
	for _, want := range []string{`vantage_check_duration_seconds_bucket{check="shop-home"`, `vantage_http_phase_seconds{`, `vantage_check_duration_seconds_count{`} {
		if !strings.Contains(full, want) {
			t.Fatalf("defaults: no %s in\n%s", want, full)
		}
	}
	if h := histogram(); len(h.GetBucket()) == 0 || len(h.GetPositiveSpan()) == 0 {
		t.Fatalf("defaults: histogram without classic or native buckets: %v", h)
	}

	cfg.Global.Metrics = checks.MetricsDetail{Histograms: checks.HistogramsNative, HTTPPhases: false}
	c.Configure(cfg)
	lean := text()
	if strings.Contains(lean, `le="0.005"`) || strings.Contains(lean, "vantage_http_phase_seconds") {
		t.Errorf("native, no phases: classic buckets or phases written:\n%s", lean)
	}
	if !strings.Contains(lean, `vantage_check_duration_seconds_count{check="shop-home"`) || !strings.Contains(lean, "vantage_http_status_code{") {
		t.Errorf("native, no phases: lost more than asked:\n%s", lean)
	}
	if h := histogram(); len(h.GetBucket()) != 0 || len(h.GetPositiveSpan()) == 0 || h.GetSampleCount() != 5 {
		t.Errorf("native: %v", h)
	}
	cfg.Global.Metrics = checks.MetricsDetail{Histograms: checks.HistogramsClassic, HTTPPhases: true}
	c.Configure(cfg)
	if h := histogram(); len(h.GetBucket()) == 0 || len(h.GetPositiveSpan()) != 0 || h.Schema != nil {
		t.Errorf("classic: %v", h)
	}
	cfg.Global.Metrics = checks.DefaultMetricsDetail
	c.Configure(cfg)
	if got := text(); got != full {
		t.Errorf("back to the defaults:\n%s\nwant\n%s", got, full)
	}
}

// TestMetricsDetailBrowser: the browser histograms follow
// global.metrics.histograms too.
func TestMetricsDetailBrowser(t *testing.T) {
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Checks = []checks.Check{{Name: "web", Type: "browser", Spec: &browser.Config{}}}
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	w := &probe.Target{Key: "web/direct/", Check: &cfg.Checks[0], Path: p}
	c := metrics.New(cfg)
	c.Observe(&probe.Observation{Target: w, Up: true, Outcome: &probe.Outcome{Result: probe.Success, Duration: time.Second,
		Steps:    []probe.StepResult{{Name: "01-navigate", Result: probe.Success, Duration: 300 * time.Millisecond}},
		Requests: []probe.Request{{Domain: "www.shop.test", Result: "ok", Status: 200, Duration: 10 * time.Millisecond}}}})
	check := func(classic, native bool) {
		t.Helper()
		seen := 0
		for _, mf := range expotest.Gather(t, c) {
			if mf.GetType() != dto.MetricType_HISTOGRAM {
				continue
			}
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				seen++
				if (len(h.GetBucket()) > 0) != classic || (len(h.GetPositiveSpan()) > 0) != native || h.GetSampleCount() != 1 {
					t.Errorf("%s classic=%v native=%v: %v", mf.GetName(), classic, native, h)
				}
			}
		}
		if seen != 3 {
			t.Errorf("%d histograms, want 3 (check, step, request)", seen)
		}
	}
	check(true, true)
	cfg.Global.Metrics = checks.MetricsDetail{Histograms: checks.HistogramsNative, HTTPPhases: true}
	c.Configure(cfg)
	check(false, true)
	cfg.Global.Metrics = checks.MetricsDetail{Histograms: checks.HistogramsClassic, HTTPPhases: true}
	c.Configure(cfg)
	check(true, false)
}
