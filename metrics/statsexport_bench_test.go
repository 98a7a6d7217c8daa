package metrics_test

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/stats"
)

// benchTargets builds n targets in groups of three nodes.
func benchTargets(b *testing.B, n int) []*probe.Target {
	ps := paths{}
	out := make([]*probe.Target, n)
	for i := range out {
		out[i] = target(b, ps, fmt.Sprintf("check%d", i/3), "direct", fmt.Sprintf("lb%d", i%3))
	}
	return out
}

// latency draws a realistic latency: lognormal around 80ms with a 5 %
// slow tail near 1.5s, so runs occupy many sketch bins.
func latency(rng *rand.Rand) time.Duration {
	if rng.Float64() < 0.05 {
		return time.Duration((1.5 + rng.Float64()*0.2) * float64(time.Second))
	}
	return time.Duration(0.08 * math.Exp(rng.NormFloat64()*0.5) * float64(time.Second))
}

// fill runs every target every interval for the longest window (1h), with
// the windows 5m and 1h, and returns the Stats, its clock and its config.
func fill(b *testing.B, tgs []*probe.Target, interval time.Duration) (*stats.Stats, *clock, *checks.Config) {
	clk := newClock()
	cfg := config(5*time.Minute, time.Hour)
	s := stats.New(stats.Options{Config: cfg, Now: clk.Now})
	rng := rand.New(rand.NewPCG(2, 2))
	for at := time.Duration(0); at < time.Hour; at += interval {
		for i, tg := range tgs {
			// Spread runs across the interval, as the scheduler's phases do.
			clk.Set(t0.Add(at + time.Duration(i)*interval/time.Duration(len(tgs))))
			s.Observe(obs(tg, latency(rng), rng.IntN(100) != 0))
		}
	}
	return s, clk, cfg
}

// BenchmarkScrape10kTargets2Windows is the time to compute and encode the
// statistics families of 10,000 targets with 2 windows in the text format:
// "stream" as /metrics does (StatsExport.Stream into expo.Encoder), "registry" through
// client_golang's Gather and expfmt (the fallback for other formats), for
// comparison. ms/scrape; series counted from the registry path.
func BenchmarkScrape10kTargets2Windows(b *testing.B) {
	tgs := benchTargets(b, 10000)
	st, clk, cfg := fill(b, tgs, 30*time.Second)
	clk.Set(t0.Add(time.Hour)) // both windows hold data
	s := metrics.NewStatsExport(st, metrics.New(cfg))
	b.Run("stream", func(b *testing.B) {
		var n countingWriter
		for b.Loop() {
			e, _ := expo.NewEncoder(&n, expfmt.NewFormat(expfmt.TypeTextPlain))
			s.Stream(e, nil)
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
		}
		if n == 0 {
			b.Fatal("nothing written")
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/scrape")
	})
	b.Run("registry", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(s)
		series := 0
		for b.Loop() {
			mfs, err := reg.Gather()
			if err != nil {
				b.Fatal(err)
			}
			enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
			series = 0
			for _, mf := range mfs {
				series += len(mf.GetMetric())
				if err := enc.Encode(mf); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/scrape")
		b.ReportMetric(float64(series), "series")
	})
}

// countingWriter discards what it is given and counts the bytes.
type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
