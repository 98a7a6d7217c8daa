package metrics_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
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
			enc, _ := metrics.NewEncoder(pw, expfmt.NewFormat(expfmt.TypeTextPlain))
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
