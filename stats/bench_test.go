package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/probe"
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

// BenchmarkObserveNsPerSample is the cost of recording one run into a
// target's series with the default windows (5m and 1h): ns/sample.
func BenchmarkObserveNsPerSample(b *testing.B) {
	var clk fastClock
	clk.Set(t0)
	s := New(Options{Config: config(5*time.Minute, time.Hour), Now: clk.Now})
	tgs := benchTargets(b, 1000)
	rng := rand.New(rand.NewPCG(1, 1))
	lat := make([]*probe.Observation, 4096)
	for i := range lat {
		lat[i] = obs(tgs[i%len(tgs)], latency(rng), i%50 != 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%10000 == 0 {
			clk.Add(time.Second) // let sub-windows rotate as in real life
		}
		s.Observe(lat[i%len(lat)])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sample")
}

// BenchmarkObserveParallelNsPerSample is the same from many goroutines on
// distinct targets, as the scheduler calls it.
func BenchmarkObserveParallelNsPerSample(b *testing.B) {
	s := New(Options{Config: config(5*time.Minute, time.Hour)})
	tgs := benchTargets(b, 1000)
	rng := rand.New(rand.NewPCG(1, 1))
	lat := make([]*probe.Observation, 4096)
	for i := range lat {
		lat[i] = obs(tgs[i%len(tgs)], latency(rng), i%50 != 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(lat))
		for pb.Next() {
			s.Observe(lat[i%len(lat)])
			i++
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sample")
}

// fastClock is a fake clock cheap enough not to show in ns/sample.
type fastClock struct{ ns atomic.Int64 }

func (c *fastClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fastClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fastClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// fill runs every target every interval for the longest window (1h), with
// the windows 5m and 1h, and returns the Stats and its clock.
func fill(b *testing.B, tgs []*probe.Target, interval time.Duration) (*Stats, *clock) {
	clk := newClock()
	s := New(Options{Config: config(5*time.Minute, time.Hour), Now: clk.Now})
	rng := rand.New(rand.NewPCG(2, 2))
	for at := time.Duration(0); at < time.Hour; at += interval {
		for i, tg := range tgs {
			// Spread runs across the interval, as the scheduler's phases do.
			clk.Set(t0.Add(at + time.Duration(i)*interval/time.Duration(len(tgs))))
			s.Observe(obs(tg, latency(rng), rng.IntN(100) != 0))
		}
	}
	return s, clk
}

// benchBytes reports heap bytes per series-window (2 windows per target)
// after an hour of runs at interval, everything included (maps, labels,
// rings, sketches).
func benchBytes(b *testing.B, targets int, interval time.Duration) {
	for b.Loop() {
		tgs := benchTargets(b, targets)
		before := heapInUse()
		s, _ := fill(b, tgs, interval)
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(2*targets), "bytes/series-window")
		runtime.KeepAlive(s)
	}
}

// BenchmarkBytesPerSeriesWindow10kTargets30sInterval: 10,000 targets at the
// default 30s interval, an hour of runs, windows 5m and 1h.
func BenchmarkBytesPerSeriesWindow10kTargets30sInterval(b *testing.B) {
	benchBytes(b, 10000, 30*time.Second)
}

// BenchmarkBytesPerSeriesWindow1kTargets1sInterval is the high-rate case:
// 1s interval, 3,600 runs per target per hour, spread over many bins.
func BenchmarkBytesPerSeriesWindow1kTargets1sInterval(b *testing.B) {
	benchBytes(b, 1000, time.Second)
}
