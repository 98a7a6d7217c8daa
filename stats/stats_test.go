package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/statstest"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/browser"
)

// The fixture is statstest's: t0 aligned on sub-window boundaries,
// configs with given windows, paths, http targets and runs.
var (
	t0     = statstest.T0
	config = statstest.Config
	target = statstest.Target
	obs    = statstest.Obs
)

type paths = statstest.Paths

// clock is the tests' settable fake clock.
type clock = testenv.Clock

func newClock() *clock { return testenv.NewClock(t0) }

// exact is the quantile the sketch estimates: the sample of rank
// floor(q·(n-1)) in sorted order.
func exact(sorted []float64, q float64) float64 {
	return sorted[int(q*float64(len(sorted)-1))]
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / want }

const tolerance = RelativeAccuracy * (1 + 1e-9)

func TestQuantileAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		"uniform": func() float64 { return 0.010 + rng.Float64()*0.490 },
		"bimodal": func() float64 { // 90 % fast, 10 % very slow
			if rng.Float64() < 0.1 {
				return 1.5 + rng.NormFloat64()*0.05
			}
			return 0.050 * math.Exp(rng.NormFloat64()*0.1)
		},
		"pareto":    func() float64 { return 0.010 / math.Pow(1-rng.Float64(), 1/1.5) },
		"lognormal": func() float64 { return math.Exp(math.Log(0.1) + rng.NormFloat64()) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			s := New(Options{Config: config(5 * time.Minute), Now: clk.Now})
			tg := target(t, paths{}, "c", "direct", "")
			const n = 20000
			var samples []float64
			for i := range n {
				// Spread over 4.5 minutes: every sub-window gets samples,
				// so rotation, encoding and merging are all exercised.
				clk.Set(t0.Add(time.Duration(i) * (270 * time.Second / n)))
				d := time.Duration(gen() * float64(time.Second))
				samples = append(samples, d.Seconds())
				s.Observe(obs(tg, d, true))
			}
			slices.Sort(samples)
			for _, q := range []float64{0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999} {
				got, ok := s.Quantile(Key{Target: tg.Key}, 5*time.Minute, q)
				want := exact(samples, q)
				if !ok || relErr(got, want) > tolerance {
					t.Errorf("q%g = %g (ok %v), exact %g, relative error %.4f", q, got, ok, want, relErr(got, want))
				}
			}
			if ws, _ := s.Window(Key{Target: tg.Key}, 5*time.Minute); ws.Samples != n || ws.Runs != n {
				t.Errorf("window stats %+v, want %d samples", ws, n)
			}
		})
	}
}

func TestWindowExpiry(t *testing.T) {
	clk := newClock()
	s := New(Options{Config: config(5*time.Minute, time.Hour), Now: clk.Now})
	tg := target(t, paths{}, "c", "direct", "")
	k := Key{Target: tg.Key}
	const W = 5 * time.Minute

	// Slow failures and slow successes at t0 (start of a sub-window) and
	// at t0+29s (its end); fast successes two minutes later.
	s.Observe(obs(tg, 2*time.Second, true))
	s.Observe(obs(tg, 3*time.Second, false))
	clk.Set(t0.Add(29 * time.Second))
	s.Observe(obs(tg, 2*time.Second, true))
	clk.Set(t0.Add(2 * time.Minute))
	for range 20 {
		s.Observe(obs(tg, 10*time.Millisecond, true))
	}

	at := func(d time.Duration) { clk.Set(t0.Add(d)) }
	check := func(what string, wantP99 float64, wantRuns, wantFail int) {
		t.Helper()
		p99, ok := s.Quantile(k, W, 0.99)
		if !ok || relErr(p99, wantP99) > tolerance {
			t.Errorf("%s: p99 %g (ok %v), want %g", what, p99, ok, wantP99)
		}
		f, ok := s.Failures(k, W)
		ws, _ := s.Window(k, W)
		if !ok || f != wantFail || ws.Runs != wantRuns {
			t.Errorf("%s: %d runs, %d failures (ok %v); want %d, %d", what, ws.Runs, f, ok, wantRuns, wantFail)
		}
	}
	at(4*time.Minute + 59*time.Second)
	check("just inside the window", 2, 23, 1)
	if r, ok := s.SuccessRatio(k, W); !ok || math.Abs(r-22.0/23) > 1e-12 {
		t.Errorf("success ratio %g (ok %v), want 22/23", r, ok)
	}
	// At t0+5m the first sub-window [t0, t0+30s) has left the window: the
	// sample from t0+29s, only 4m31s old, drops out with it (the
	// documented early drop of up to one sub-window).
	at(W)
	check("first sub-window expired", 0.010, 20, 0)
	if r, _ := s.SuccessRatio(k, W); r != 1 {
		t.Errorf("success ratio %g after the failure expired, want 1", r)
	}
	// The hour window still has everything.
	if p, ok := s.Quantile(k, time.Hour, 0.99); !ok || relErr(p, 2) > tolerance {
		t.Errorf("1h p99 %g (ok %v), want 2", p, ok)
	}
	// Past the window nothing is left: every figure is absent.
	at(2*time.Minute + W)
	if _, ok := s.Quantile(k, W, 0.5); ok {
		t.Error("quantile present for an empty window")
	}
	if _, ok := s.SuccessRatio(k, W); ok {
		t.Error("success ratio present for an empty window")
	}
	if _, ok := s.Failures(k, W); ok {
		t.Error("failures present for an empty window")
	}
	// New samples after a long gap land in a fresh sub-window, and old
	// slots that share its ring position are not resurrected.
	at(time.Hour + 2*time.Minute)
	s.Observe(obs(tg, 50*time.Millisecond, true))
	if ws, _ := s.Window(k, time.Hour); ws.Runs != 1 || relErr(ws.P50, 0.05) > tolerance {
		t.Errorf("after a gap: %+v", ws)
	}
	// A clock that steps back neither panics nor loses the run.
	at(time.Hour)
	s.Observe(obs(tg, 50*time.Millisecond, true))
	at(time.Hour + 2*time.Minute)
	if ws, _ := s.Window(k, W); ws.Runs != 2 {
		t.Errorf("after a clock step back: %d runs, want 2", ws.Runs)
	}
	// Windows that are not kept are absent, as are unknown keys and bad q.
	if _, ok := s.Quantile(k, 10*time.Minute, 0.5); ok {
		t.Error("quantile over a window that is not kept")
	}
	if _, ok := s.Quantile(Key{Target: "nope"}, W, 0.5); ok {
		t.Error("quantile of an unknown target")
	}
	if _, ok := s.Quantile(k, W, 1.5); ok {
		t.Error("quantile 1.5")
	}
}

func TestConfigureKeepsWindows(t *testing.T) {
	clk := newClock()
	cfg := config(5*time.Minute, time.Hour)
	cfg.Alerts = []checks.Alert{{Name: "a", Window: model.Duration(10 * time.Minute)}}
	s := New(Options{Config: cfg, Now: clk.Now})
	all, exp := s.Windows()
	if !slices.Equal(all, []time.Duration{5 * time.Minute, 10 * time.Minute, time.Hour}) ||
		!slices.Equal(exp, []time.Duration{5 * time.Minute, time.Hour}) {
		t.Fatalf("windows %v exported %v", all, exp)
	}
	tg := target(t, paths{}, "c", "direct", "")
	k := Key{Target: tg.Key}
	s.Observe(obs(tg, 100*time.Millisecond, true))
	if _, ok := s.Quantile(k, 10*time.Minute, 0.5); !ok {
		t.Fatal("alert window not kept")
	}

	cfg2 := config(5 * time.Minute)
	cfg2.Alerts = []checks.Alert{{Name: "b", Window: model.Duration(2 * time.Minute)}}
	s.Configure(cfg2)
	if p, ok := s.Quantile(k, 5*time.Minute, 0.5); !ok || relErr(p, 0.1) > tolerance {
		t.Errorf("5m window lost its data on reload: %g %v", p, ok)
	}
	for _, w := range []time.Duration{10 * time.Minute, time.Hour} {
		if _, ok := s.Window(k, w); ok {
			t.Errorf("window %s still kept after reload", w)
		}
	}
	if ws, ok := s.Window(k, 2*time.Minute); !ok || ws.Runs != 0 {
		t.Errorf("new window: %+v %v; want kept and empty", ws, ok)
	}
	s.Observe(obs(tg, 100*time.Millisecond, true))
	if ws, _ := s.Window(k, 2*time.Minute); ws.Runs != 1 {
		t.Errorf("new window did not record: %+v", ws)
	}
}

// observeP90 records 100 samples for tg so that its p90 is about p90.
func observeP90(s *Stats, tg *probe.Target, p90 time.Duration) {
	for i := range 100 {
		s.Observe(obs(tg, p90*time.Duration(50+i)/140, true))
	}
}

func TestNodeSlowdown(t *testing.T) {
	clk := newClock()
	s := New(Options{Config: config(5*time.Minute, time.Hour), Now: clk.Now})
	ps := paths{}
	lb1 := target(t, ps, "shop", "direct", "lb1")
	lb2 := target(t, ps, "shop", "direct", "lb2")
	lb3 := target(t, ps, "shop", "direct", "lb3")
	// The same nodes on another path and another check do not count.
	other := target(t, ps, "shop", "alt", "lb4")
	otherCheck := target(t, ps, "api", "direct", "lb5")
	observeP90(s, lb1, 100*time.Millisecond)
	observeP90(s, lb2, 500*time.Millisecond)
	observeP90(s, lb3, 110*time.Millisecond)
	observeP90(s, other, 10*time.Millisecond)
	observeP90(s, otherCheck, 10*time.Millisecond)

	r2, ok := s.NodeSlowdown(lb2.Key)
	if !ok || r2 < 4 || r2 > 5.2 {
		t.Errorf("slow node's slowdown %g (ok %v), want about 500/100..110", r2, ok)
	}
	for _, tg := range []*probe.Target{lb1, lb3} {
		if r, ok := s.NodeSlowdown(tg.Key); !ok || r < 0.85 || r > 1.15 {
			t.Errorf("%s slowdown %g (ok %v), want about 1", tg.Key, r, ok)
		}
	}
	// Exact arithmetic: lb2's p90 over the low median of lb1 and lb3.
	p := func(tg *probe.Target) float64 {
		v, _ := s.Quantile(Key{Target: tg.Key}, 5*time.Minute, 0.9)
		return v
	}
	if want := p(lb2) / min(p(lb1), p(lb3)); math.Abs(r2-want) > 1e-12 {
		t.Errorf("slowdown %g, want %g", r2, want)
	}
	for _, tg := range []*probe.Target{other, otherCheck} {
		if r, ok := s.NodeSlowdown(tg.Key); ok {
			t.Errorf("%s has slowdown %g without siblings", tg.Key, r)
		}
	}

	// Two nodes: each has only one other, so no slowdown.
	s.Forget(lb3)
	for _, tg := range []*probe.Target{lb1, lb2} {
		if r, ok := s.NodeSlowdown(tg.Key); ok {
			t.Errorf("%s slowdown %g with two nodes, want absent", tg.Key, r)
		}
	}
	// A node without data in the shortest window does not count as a
	// sibling: after 5m only the 1h window has data.
	lb3 = target(t, ps, "shop", "direct", "lb3")
	observeP90(s, lb3, 110*time.Millisecond)
	clk.Add(5 * time.Minute)
	observeP90(s, lb1, 100*time.Millisecond)
	if r, ok := s.NodeSlowdown(lb1.Key); ok {
		t.Errorf("slowdown %g from siblings without recent data", r)
	}
	if r, ok := s.NodeSlowdownOver(lb2.Key, time.Hour); !ok || r < 4 {
		t.Errorf("1h slowdown %g %v", r, ok)
	}
	// Unpinned targets have no slowdown.
	plain := target(t, ps, "web", "direct", "")
	observeP90(s, plain, time.Second)
	if _, ok := s.NodeSlowdown(plain.Key); ok {
		t.Error("slowdown for a target without a node")
	}
	if _, ok := s.NodeSlowdown("missing"); ok {
		t.Error("slowdown for an unknown target")
	}
}

func TestSlowdownMedian(t *testing.T) {
	g := []nodeP90{{"a", 1}, {"b", 10}, {"c", 2}, {"d", 3}, {"e", 100}}
	for _, c := range []struct {
		node string
		want float64
	}{
		{"a", 1.0 / 3},   // others 2 3 10 100: low median 3
		{"e", 100 / 2.0}, // others 1 2 3 10: 2
		{"c", 2.0 / 3},   // others 1 3 10 100: 3
		{"d", 3.0 / 2},   // others 1 2 10 100: 2
	} {
		want := c.want
		var p float64
		for _, n := range g {
			if n.node == c.node {
				p = n.p90
			}
		}
		if got, ok := slowdown(c.node, p, g); !ok || math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: %g %v, want %g", c.node, got, ok, want)
		}
	}
	// Below the floor every node counts as SlowdownFloor: jitter on a
	// very fast endpoint is not a slowdown.
	if got, ok := slowdown("a", 0.004, []nodeP90{{"a", 0.004}, {"b", 0}, {"c", 0.001}}); !ok || got != 1 {
		t.Errorf("slowdown of 4ms against 0-1ms siblings = %g, want 1 (floor)", got)
	}
	if got, _ := slowdown("a", 0.3, []nodeP90{{"a", 0.3}, {"b", 0.002}, {"c", 0.004}}); math.Abs(got-30) > 1e-9 {
		t.Errorf("slowdown of 300ms against 2-4ms siblings = %g, want 30 (against the floor)", got)
	}
}

func TestStepsAndDomains(t *testing.T) {
	clk := newClock()
	cfg := config(5 * time.Minute)
	cfg.Global.MaxDomainsPerCheck = 2
	s := New(Options{Config: cfg, Now: clk.Now})
	ps := paths{}
	tg := target(t, ps, "flow", "direct", "")
	s.Observe(&probe.Observation{Target: tg, Outcome: &probe.Outcome{
		Result: probe.Failure, Duration: 900 * time.Millisecond,
		Steps: []probe.StepResult{
			{Name: "login", Result: probe.Success, Duration: 200 * time.Millisecond},
			{Name: "cart", Result: probe.Failure, Duration: 700 * time.Millisecond},
		},
	}})
	if p, ok := s.Quantile(Key{Target: tg.Key, Step: "login"}, 5*time.Minute, 0.5); !ok || relErr(p, 0.2) > tolerance {
		t.Errorf("login p50 %g %v", p, ok)
	}
	if _, ok := s.Quantile(Key{Target: tg.Key, Step: "cart"}, 5*time.Minute, 0.5); ok {
		t.Error("a failed step fed the latency sketch")
	}
	if r, ok := s.SuccessRatio(Key{Target: tg.Key, Step: "cart"}, 5*time.Minute); !ok || r != 0 {
		t.Errorf("cart success ratio %g %v", r, ok)
	}
	if r, ok := s.SuccessRatio(Key{Target: tg.Key}, 5*time.Minute); !ok || r != 0 {
		t.Errorf("target success ratio %g %v", r, ok)
	}

	// A single-step check has no step series.
	one := target(t, ps, "one", "direct", "")
	s.Observe(&probe.Observation{Target: one, Outcome: &probe.Outcome{
		Result: probe.Success, Duration: time.Millisecond, Steps: []probe.StepResult{{Result: probe.Success}},
	}})

	// Browser requests feed per-domain series, capped per target.
	br := target(t, ps, "browse", "direct", "")
	br.Check.Type, br.Check.Spec = "browser", &browser.Config{}
	s.Observe(&probe.Observation{Target: br, Outcome: &probe.Outcome{
		Result: probe.Success, Duration: 3 * time.Second,
		Steps: []probe.StepResult{{Name: "home", Result: probe.Success, Duration: 3 * time.Second}},
		Requests: []probe.Request{
			{Domain: "www.shop.test", Result: "ok", Duration: 100 * time.Millisecond},
			{Domain: "api.shop.test", Result: "http_error", Duration: 50 * time.Millisecond},
			{Domain: "api.shop.test", Result: "ok", Duration: 60 * time.Millisecond},
			{Domain: "ads.test", Result: "blocked"},
			{Domain: "third.test", Result: "ok", Duration: time.Millisecond}, // over the cap
		},
	}})
	s.ObserveStep(br, "checkout", 2*time.Second, true)
	s.ObserveDomain(br, "www.shop.test", 300*time.Millisecond, false)

	var keys []string
	for _, ss := range s.Snapshot() {
		keys = append(keys, fmt.Sprintf("%s|%s|%s", ss.Key.Target, ss.Key.Step, ss.Key.Domain))
		if len(ss.Windows) != 1 || ss.Windows[0].Window != 5*time.Minute {
			t.Errorf("%v windows %+v", ss.Key, ss.Windows)
		}
	}
	want := []string{
		"browse/direct/||", "browse/direct/||api.shop.test", "browse/direct/||www.shop.test",
		"browse/direct/|checkout|", "browse/direct/|home|",
		"flow/direct/||", "flow/direct/|cart|", "flow/direct/|login|",
		"one/direct/||",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("series\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	if r, ok := s.SuccessRatio(Key{Target: br.Key, Domain: "api.shop.test"}, 5*time.Minute); !ok || r != 0.5 {
		t.Errorf("api domain ratio %g %v", r, ok)
	}
	if f, ok := s.Failures(Key{Target: br.Key, Domain: "www.shop.test"}, 5*time.Minute); !ok || f != 1 {
		t.Errorf("www domain failures %d %v", f, ok)
	}

	// Forget drops the target with its step and domain series.
	s.Forget(br)
	for _, ss := range s.Snapshot() {
		if ss.Key.Target == br.Key {
			t.Errorf("series %v survived Forget", ss.Key)
		}
	}
	if _, ok := s.SuccessRatio(Key{Target: br.Key, Domain: "api.shop.test"}, 5*time.Minute); ok {
		t.Error("domain series survived Forget")
	}
}

func TestForgetOfReplacedTarget(t *testing.T) {
	s := New(Options{Config: config(5 * time.Minute)})
	ps := paths{}
	old := target(t, ps, "c", "direct", "")
	s.Observe(obs(old, time.Millisecond, true))
	// A reload rebuilt the target under the same key and it ran before
	// the old one's Forget arrived: the new data stays.
	nu := target(t, ps, "c", "direct", "")
	s.Observe(obs(nu, time.Millisecond, true))
	s.Forget(old)
	if ws, ok := s.Window(Key{Target: nu.Key}, 5*time.Minute); !ok || ws.Runs != 2 {
		t.Errorf("%+v %v", ws, ok)
	}
	s.Forget(nu)
	if _, ok := s.Window(Key{Target: nu.Key}, 5*time.Minute); ok {
		t.Error("series survived Forget")
	}
}

func TestConcurrentUse(t *testing.T) {
	clk := newClock()
	s := New(Options{Config: config(time.Minute, 5*time.Minute), Now: clk.Now})
	ps := paths{}
	var tgs []*probe.Target
	for i := range 8 {
		tgs = append(tgs, target(t, ps, "c", "direct", fmt.Sprintf("n%d", i)))
	}
	var wg sync.WaitGroup
	const perWorker = 2000
	for w, tg := range tgs {
		wg.Go(func() {
			for i := range perWorker {
				s.Observe(obs(tg, time.Duration(1+i%100)*time.Millisecond, i%10 != 0))
				s.ObserveStep(tgs[0], "shared", time.Millisecond, true)
				if w == 0 && i%100 == 0 {
					clk.Add(7 * time.Second)
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Snapshot()
			s.NodeSlowdown(tgs[1].Key)
			s.Quantile(Key{Target: tgs[2].Key}, time.Minute, 0.9)
			s.SuccessRatio(Key{Target: tgs[0].Key, Step: "shared"}, 5*time.Minute)
		}
	})
	readers.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ws := []time.Duration{time.Minute, 5 * time.Minute}
			if i%2 == 1 {
				ws = append(ws, 2*time.Minute)
			}
			s.Configure(config(ws...))
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	ws, ok := s.Window(Key{Target: tgs[0].Key, Step: "shared"}, 5*time.Minute)
	if !ok || ws.Runs == 0 || ws.OK != ws.Runs {
		t.Errorf("shared step %+v %v", ws, ok)
	}
	// The last reload left 1m and 5m (and maybe 2m); every target recorded
	// into its 5m window.
	for _, tg := range tgs {
		if ws, ok := s.Window(Key{Target: tg.Key}, 5*time.Minute); !ok || ws.Runs == 0 || ws.Runs > perWorker {
			t.Errorf("%s: %+v %v", tg.Key, ws, ok)
		}
	}
}
