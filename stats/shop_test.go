package stats

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// TestShopNodeFault runs the real HTTP kind against the demo shop's three
// load-balancer nodes, with a fault delaying a share of lb2's responses, and
// checks the figures the incident needed: lb2's tail moves, its median
// does not, and its slowdown stands out while its siblings' stays near 1.
// The injected latency is 300ms rather than 1.5s to keep the test fast; the
// shape is the same since the healthy loopback latency is a few ms.
func TestShopNodeFault(t *testing.T) {
	shop, err := demo.Start(t.Context(), demo.Options{
		Seed: 1, Dir: t.TempDir(),
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shop.Close() })

	path, err := netpath.New(checks.Path{Name: "direct", Resolver: shop.DNSAddr()})
	if err != nil {
		t.Fatal(err)
	}
	follow := true
	check := &checks.Check{
		// Plain HTTP: TLS handshakes under -race on a small machine cost
		// tens of ms of CPU and would bury the healthy latency in noise.
		Name: "shop", Type: "http", Spec: &httpprobe.Config{URL: shop.HTTPURL(demo.WWWHost, "/healthz"),
			HTTP: &httpprobe.HTTPRequest{Method: "GET", FollowRedirects: &follow, MaxRedirects: 10, MaxBodyBytes: 1 << 20}},
	}
	var targets []*probe.Target
	for _, n := range shop.Nodes() {
		node := &probe.Node{Name: n.Name, Addr: n.IP}
		targets = append(targets, &probe.Target{
			Key: probe.TargetKey(check.Name, path.Name(), node), Check: check, Path: path, Node: node,
			Redact: func(s string) string { return s },
		})
	}
	prober := httpprobe.New(zerolog.Nop())
	const injected = 300 * time.Millisecond
	const perNode = 200

	// run probes every node perNode times with 4 workers per node and
	// returns the Stats and each node's successful durations in seconds.
	run := func(ratio float64) (*Stats, [][]float64) {
		t.Helper()
		if err := shop.SetFault("lb2", demo.Fault{Latency: demo.Duration(injected), LatencyRatio: ratio}); err != nil {
			t.Fatal(err)
		}
		clk := newClock() // one sub-window: every run is in every window
		cfg := config(5*time.Minute, time.Hour)
		s := New(Options{Config: cfg, Now: clk.Now})
		samples := make([][]float64, len(targets))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, tg := range targets {
			var left atomic.Int32
			left.Store(perNode)
			for range 4 {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
						out := prober.Probe(ctx, tg)
						cancel()
						if out.Result != probe.Success {
							t.Errorf("%s: %s %s", tg.Key, out.Result, out.Reason)
							continue
						}
						mu.Lock()
						samples[i] = append(samples[i], out.Duration.Seconds())
						// Observe is never concurrent for one target in the
						// scheduler; the mutex keeps that true here.
						s.Observe(&probe.Observation{Target: tg, Outcome: &out})
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		for i := range samples {
			slices.Sort(samples[i])
		}
		return s, samples
	}

	type figs struct{ p50, p90, p99, slowdown float64 }
	figures := func(s *Stats, samples [][]float64) []figs {
		t.Helper()
		out := make([]figs, len(targets))
		for i, tg := range targets {
			k := Key{Target: tg.Key}
			for _, q := range []float64{0.5, 0.9, 0.99} {
				got, ok := s.Quantile(k, 5*time.Minute, q)
				want := exact(samples[i], q)
				if !ok || relErr(got, want) > tolerance {
					t.Errorf("%s q%g = %g, exact %g: relative error %.4f", tg.Node.Name, q, got, want, relErr(got, want))
				}
				switch q {
				case 0.5:
					out[i].p50 = got
				case 0.9:
					out[i].p90 = got
				case 0.99:
					out[i].p99 = got
				}
			}
			out[i].slowdown, _ = s.NodeSlowdown(tg.Key)
			t.Logf("%s: %d samples p50 %.4f p90 %.4f p99 %.4f slowdown %.2f",
				tg.Node.Name, len(samples[i]), out[i].p50, out[i].p90, out[i].p99, out[i].slowdown)
		}
		// The exported figures say the same as the query API.
		exported := map[string]float64{}
		s.Export(func(g []TargetFigures) bool {
			for _, tf := range g {
				if tf.HasSlowdown {
					exported[tf.Target.Key] = tf.Slowdown
				}
			}
			return true
		})
		for i, tg := range targets {
			if v, ok := exported[tg.Key]; !ok || v != out[i].slowdown {
				t.Errorf("%s: exported slowdown %g (present %v), NodeSlowdown %g", tg.Key, v, ok, out[i].slowdown)
			}
		}
		return out
	}
	healthy := func(f []figs, field func(figs) float64) float64 { return max(field(f[0]), field(f[2])) }
	inj := injected.Seconds()
	// A delayed response takes at least inj; the sketch may report it up to
	// 1 % low (a bin's representative value), so "includes the delay" is
	// ≥ inj less that accuracy.
	injLow := inj * (1 - tolerance)

	// 20 % of lb2's responses delayed: p90 and p99 move, p50 does not.
	f := figures(run(0.2))
	lb2 := f[1]
	if lb2.p90 < injLow || lb2.p99 < injLow {
		t.Errorf("20%%: lb2 p90 %g and p99 %g should include the injected %gs", lb2.p90, lb2.p99, inj)
	}
	// "Moved" means the quantile lands among the delayed responses (≥ the
	// injected latency); "did not move" means it stays below half of it.
	if hp50 := healthy(f, func(x figs) float64 { return x.p50 }); lb2.p50 > inj/2 || lb2.p50 > 3*hp50 {
		t.Errorf("20%%: lb2 p50 %g moved (healthy nodes' %g)", lb2.p50, hp50)
	}
	if lb2.slowdown <= 3 {
		t.Errorf("20%%: lb2 slowdown %g, want > 3", lb2.slowdown)
	}
	for _, i := range []int{0, 2} {
		if f[i].slowdown < 0.5 || f[i].slowdown > 2 {
			t.Errorf("20%%: %s slowdown %g, want about 1", targets[i].Node.Name, f[i].slowdown)
		}
	}

	// 5 %: only p99 moves.
	f = figures(run(0.05))
	lb2 = f[1]
	if lb2.p99 < injLow {
		t.Errorf("5%%: lb2 p99 %g should include the injected %gs", lb2.p99, inj)
	}
	if lb2.p90 > inj/2 || lb2.p50 > inj/2 {
		t.Errorf("5%%: lb2 p50 %g p90 %g moved", lb2.p50, lb2.p90)
	}
}
