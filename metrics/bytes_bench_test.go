package metrics_test

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// BenchmarkCollectorBytesPerTarget is the live heap the check series of
// 10,000 plain-HTTP targets hold after 100 runs each (loopback-like
// latencies over two decades, so many native buckets) and two scrapes:
// bytes/target.
func BenchmarkCollectorBytesPerTarget(b *testing.B) {
	const n = 10000
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Global.Location = "bench"
	for i := range n {
		cfg.Checks = append(cfg.Checks, checks.Check{Name: fmt.Sprintf("scale-%06d", i), Type: "http"})
	}
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		b.Fatal(err)
	}
	targets := make([]*probe.Target, n)
	for i := range targets {
		targets[i] = &probe.Target{Key: cfg.Checks[i].Name + "/direct/", Check: &cfg.Checks[i], Path: p}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var perTarget float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := metrics.New(cfg)
		for range 100 {
			for _, tg := range targets {
				d := time.Duration(0.0003 * math.Exp(rng.Float64()*math.Log(200)) * float64(time.Second))
				c.Observe(&probe.Observation{Target: tg, Up: true, Outcome: &probe.Outcome{Result: probe.Success, Duration: d,
					Steps: []probe.StepResult{{Name: "request", Result: probe.Success, StatusCode: 200,
						Phases: probe.Phases{Connect: d / 4, Processing: d / 2, Transfer: d / 4}}}}})
			}
		}
		for range 2 {
			enc, _ := expo.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeProtoDelim))
			c.Stream(enc, nil)
			_ = enc.Close()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perTarget = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perTarget, "bytes/target")
}
