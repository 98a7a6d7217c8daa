package alerting_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/internal/testdaemon"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
)

// benchChecks × 3 nodes = 10,002 targets over one path.
const benchChecks = 3334

// benchRules are five rules of the kinds the README shows, all on the 5m
// window (one window: the measures adapter computes each target's figures
// once per cycle, as it does for a real config with one alert window).
const benchRules = `
alerts:
  - name: SlowP99
    when: p99 > 1.5s
    window: 5m
    for: 1m
  - name: SlowP90
    when: p90 > 1s
    window: 5m
    for: 1m
  - name: Unreliable
    when: success_ratio < 0.9
    window: 5m
  - name: Failing
    when: failures > 3
    window: 5m
  - name: LoadBalancerNodeDegraded
    when: node_slowdown > 3
    window: 5m
    for: 1m
    by: [node]
`

// nopProber answers at once; the benchmark feeds the statistics itself.
type nopProber struct{}

func (nopProber) Probe(context.Context, *probe.Target) probe.Outcome {
	return probe.Outcome{Result: probe.Success, Duration: time.Millisecond}
}

func benchConfig() string {
	var b strings.Builder
	b.WriteString(`global:
  interval: 1h
  timeout: 5s
  location: bench
  quantile_windows: [1m, 5m]
paths:
  - name: direct
checks:
`)
	for i := range benchChecks {
		fmt.Fprintf(&b, `  - name: bench-%05d
    type: http
    url: http://www.shop.test:8080/
    nodes: {addresses: [127.0.0.11, 127.0.0.12, 127.0.0.13]}
`, i)
	}
	b.WriteString(benchRules)
	return b.String()
}

// fillStats gives every target 30 runs (5m at a 10s interval): log-normal
// latencies around 80ms, 0.5% failures; one target in 50 is on a node
// that is 5× slower, one in 200 fails a third of its runs.
func fillStats(d *daemon.Daemon, rng *rand.Rand) int {
	targets := d.Scheduler().Targets()
	for i, t := range targets {
		slow := i%50 == 1
		flaky := i%200 == 7
		for range 30 {
			lat := 0.08 * math.Exp(rng.NormFloat64()*0.4)
			if slow {
				lat *= 5
			}
			res := probe.Success
			if rng.Float64() < 0.005 || (flaky && rng.Float64() < 0.33) {
				res = probe.Failure
			}
			d.Stats().Observe(&probe.Observation{Target: t, Interval: 10 * time.Second,
				Outcome: &probe.Outcome{Result: res, Duration: time.Duration(lat * float64(time.Second))}})
		}
	}
	return len(targets)
}

// benchDaemon runs a daemon with 10,002 targets whose probes do nothing,
// with real storage, and returns it with its statistics filled.
func benchDaemon(b *testing.B) *daemon.Daemon {
	b.Helper()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "vantage.yaml")
	if err := os.WriteFile(cfg, []byte(benchConfig()), 0o600); err != nil {
		b.Fatal(err)
	}
	log := zerolog.Nop()
	d := testdaemon.Start(b, daemon.Options{ConfigFile: cfg, StoragePath: filepath.Join(dir, "data"), Logger: log,
		Probers: map[string]probe.Prober{"http": nopProber{}}, Registry: prometheus.NewRegistry(),
		EvalInterval: time.Hour}).Daemon
	deadline := time.Now().Add(30 * time.Second)
	for len(d.Scheduler().Targets()) < 3*benchChecks {
		if time.Now().After(deadline) {
			b.Fatalf("%d targets, want %d", len(d.Scheduler().Targets()), 3*benchChecks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := fillStats(d, rand.New(rand.NewPCG(1, 2))); n != 3*benchChecks {
		b.Fatalf("%d targets", n)
	}
	return d
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tableMeasures answers from precomputed values: the engine alone.
type tableMeasures map[string]map[string]float64 // measure → target → value

func (m tableMeasures) Measure(measure string, s alerting.Series, _ time.Duration) (float64, bool) {
	v, ok := m[measure][s.Target]
	return v, ok
}

// BenchmarkEval10kTargets5Rules is one evaluation cycle of 5 rules over
// 10,002 targets: the engine alone on precomputed measures, and the full
// Manager.Eval of a running daemon (series from the scheduler, measures
// from the statistics through the daemon's adapter, state to SQLite).
// Target: ≤ 50 ms per cycle.
func BenchmarkEval10kTargets5Rules(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		cfg, err := kinds.Registry().Parse([]byte(benchConfig()), "bench.yaml", nil)
		if err != nil {
			b.Fatal(err)
		}
		e := alerting.New(alerting.Options{Logger: zerolog.Nop()})
		if err := e.Configure(cfg); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		tm := tableMeasures{}
		var series []alerting.Series
		for i := range benchChecks {
			for j, node := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"} {
				key := fmt.Sprintf("bench-%05d/direct/%s", i, node)
				series = append(series, alerting.Series{Target: key, Labels: map[string]string{
					"check": fmt.Sprintf("bench-%05d", i), "type": "http", "path": "direct", "node": node, "location": "bench"}})
				slow := (3*i+j)%50 == 1
				for _, m := range []string{"p99", "p90", "success_ratio", "failures", "node_slowdown"} {
					if tm[m] == nil {
						tm[m] = map[string]float64{}
					}
					v := rng.Float64()
					switch m {
					case "p99", "p90":
						v = 0.1 + 0.1*v
						if slow {
							v *= 10
						}
					case "success_ratio":
						v = 1 - 0.01*v
					case "failures":
						v = math.Floor(2 * v)
					case "node_slowdown":
						v = 0.8 + 0.4*v
						if slow {
							v = 5
						}
					}
					tm[m][key] = v
				}
			}
		}
		now := time.Now()
		b.ResetTimer()
		for b.Loop() {
			now = now.Add(10 * time.Second)
			e.Eval(now, series, tm)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/cycle")
	})
	b.Run("manager", func(b *testing.B) {
		d := benchDaemon(b)
		m := d.Alerts()
		ctx := context.Background()
		now := time.Now()
		m.Eval(ctx, now) // instances start pending: the steady state has them
		b.ResetTimer()
		var firing int
		cpu0 := cpuTime()
		for b.Loop() {
			now = now.Add(10 * time.Second)
			m.Eval(ctx, now)
		}
		b.StopTimer()
		// CPU time as well as wall time: on a shared machine the wall figure
		// carries other processes' load.
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/cycle")
		for _, inst := range m.Engine().Instances() {
			if inst.State == alerting.Firing {
				firing++
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/cycle")
		b.ReportMetric(float64(firing), "firing")
	})
}
