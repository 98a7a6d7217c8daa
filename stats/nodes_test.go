package stats

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// hypergeomTail is P(X >= a) for the number of bad runs X a node of n1
// runs gets when m bad runs fall at random among n runs.
func hypergeomTail(a, n1, n, m int) float64 {
	lc := func(n, k int) float64 {
		x, _ := math.Lgamma(float64(n + 1))
		y, _ := math.Lgamma(float64(k + 1))
		z, _ := math.Lgamma(float64(n - k + 1))
		return x - y - z
	}
	var p float64
	for k := a; k <= min(n1, m); k++ {
		p += math.Exp(lc(n1, k) + lc(n-n1, m-k) - lc(n, m))
	}
	return p
}

// TestPValueNearExactTail: for one stratum the p-value is never smaller
// than the exact hypergeometric tail (the detector errs on the safe side)
// and within a factor of three of it where the tail is small, so FireAlpha
// means what it says.
func TestPValueNearExactTail(t *testing.T) {
	for _, tc := range []struct{ a, c, n1, n2 int }{
		{7, 0, 72, 144}, {10, 1, 72, 144}, {12, 3, 120, 240}, {5, 0, 30, 60}, {20, 4, 360, 720},
		{5, 3, 71, 4000}, {9, 0, 71, 4000}, {2, 10, 80, 160},
	} {
		n, m := tc.n1+tc.n2, tc.a+tc.c
		var tl tally
		tl.add(float64(tc.a), float64(tc.n1), float64(tc.c), float64(tc.n2))
		p := tl.pvalue()
		exact := hypergeomTail(tc.a, tc.n1, n, m)
		if r := p / exact; r < 0.99 || (exact < 0.01 && r > 3) {
			t.Errorf("%+v: p=%.3g, exact %.3g (ratio %.2f)", tc, p, exact, r)
		}
	}
	if _, p := cmh(tally{a: 3, e: 3, v: 2}); p != 0.5 {
		t.Errorf("no excess: p=%v, want 0.5", p)
	}
	if z, p := cmh(tally{}); z != 0 || p != 1 {
		t.Errorf("no bad runs at all: z=%v p=%v, want 0 and 1", z, p)
	}
}

// shopSim drives a Stats like the demo shop watched at a 10 s interval:
// three checks over two paths on three nodes; app-checkout makes two
// requests per run. A fault slows a share of lb2's responses by 1.5 s;
// noise slows a share of every node's runs alike.
type shopSim struct {
	t       testing.TB
	clk     *clock
	st      *Stats
	rng     *rand.Rand
	targets []*simTarget
	det     *NodeDetector
	nd      checks.NodeDetection
	window  time.Duration
	// baseline is the detector's baseline window (0: none).
	baseline time.Duration
	noise    float64 // share of runs slowed by 50-400 ms, on every node
	fault    float64 // share of lb2's responses slowed by 1.5 s
	elapsed  time.Duration
}

type simTarget struct {
	tg       *probe.Target
	phase    time.Duration
	requests int
}

func newShopSim(t testing.TB, seed uint64, window, baseline time.Duration) *shopSim {
	cfg := config(time.Minute, window, baseline)
	cfg.Global.NodeDetection = checks.DefaultNodeDetection
	clk := newClock()
	sim := &shopSim{t: t, clk: clk, st: New(Options{Config: cfg, Now: clk.Now}),
		rng: rand.New(rand.NewPCG(seed, 7)), det: NewNodeDetector(),
		nd: checks.DefaultNodeDetection, window: window, baseline: baseline}
	ps := paths{}
	for _, c := range []struct {
		name string
		reqs int
	}{{"shop-home", 1}, {"shop-product", 1}, {"app-checkout", 2}} {
		for _, p := range []string{"direct", "alt-source"} {
			for _, n := range []string{"lb1", "lb2", "lb3"} {
				sim.targets = append(sim.targets, &simTarget{tg: target(t, ps, c.name, p, n),
					phase: time.Duration(sim.rng.IntN(10)) * time.Second, requests: c.reqs})
			}
		}
	}
	return sim
}

// run advances the simulation by d in 1 s steps, evaluating the detector
// every 5 s, and calls each with every evaluation's verdicts.
func (s *shopSim) run(d time.Duration, each func(at time.Duration, v map[string]NodeVerdict)) {
	for end := s.elapsed + d; s.elapsed < end; s.elapsed += time.Second {
		s.clk.Set(t0.Add(s.elapsed))
		for _, tg := range s.targets {
			if (s.elapsed-tg.phase)%(10*time.Second) != 0 {
				continue
			}
			lat := time.Duration(20+s.rng.IntN(20)) * time.Millisecond * time.Duration(tg.requests)
			if s.rng.Float64() < s.noise {
				lat += time.Duration(50+s.rng.IntN(350)) * time.Millisecond
			}
			if tg.tg.Node.Name == "lb2" {
				for range tg.requests {
					if s.rng.Float64() < s.fault {
						lat += 1500 * time.Millisecond
					}
				}
			}
			s.st.Observe(obs(tg.tg, lat, true))
		}
		if s.elapsed%(5*time.Second) == 0 {
			v := s.det.Update(s.clk.Now(), s.window, s.st.NodeEvidence(s.window, s.baseline, s.nd), s.nd, 0)
			if each != nil {
				each(s.elapsed, v)
			}
		}
	}
}

// TestNodeDetectorPartialFault: lb2 slowed on 10 % of its responses is
// called degraded within two minutes, stays degraded for the whole fault,
// and is cleared within two minutes of the fault ending; lb1 and lb3 never
// are. A simulation, over several seeds, of what the detection benchmark
// measures on the real daemon.
func TestNodeDetectorPartialFault(t *testing.T) {
	const window = 2 * time.Minute
	for seed := range uint64(8) {
		sim := newShopSim(t, seed, window, time.Hour)
		sim.noise = 0.01
		sim.run(30*time.Minute, func(at time.Duration, v map[string]NodeVerdict) {
			for n, vd := range v {
				if vd.Degraded {
					t.Fatalf("seed %d: %s degraded at %s before any fault (%+v)", seed, n, at, vd.NodeEvidence)
				}
			}
		})
		sim.fault = 0.10
		start := sim.elapsed
		var detected time.Duration = -1
		sim.run(5*time.Minute, func(at time.Duration, v map[string]NodeVerdict) {
			for n, vd := range v {
				if vd.Degraded && n != "lb2" {
					t.Fatalf("seed %d: healthy %s degraded at %s", seed, n, at-start)
				}
			}
			switch {
			case v["lb2"].Degraded && detected < 0:
				detected = at - start
			case !v["lb2"].Degraded && detected >= 0:
				t.Fatalf("seed %d: lb2 cleared at %s while the fault lasts (%+v)", seed, at-start, v["lb2"].NodeEvidence)
			}
		})
		if detected < 0 || detected > 2*time.Minute {
			t.Fatalf("seed %d: lb2 degraded after %s, want within 2m", seed, detected)
		}
		vd := sim.det.Verdicts(sim.clk.Now(), time.Minute)[window]
		for _, v := range vd {
			if v.Node == "lb2" && (len(v.Affected) == 0 || v.SlowShare() <= v.SiblingSlowShare() || v.SlowMedian < 1.5 || v.SlowMedian > 1.7) {
				t.Errorf("seed %d: lb2's evidence does not show the fault: %+v", seed, v.NodeEvidence)
			}
		}
		sim.fault = 0
		end := sim.elapsed
		var cleared time.Duration = -1
		sim.run(3*time.Minute, func(at time.Duration, v map[string]NodeVerdict) {
			if cleared < 0 && !v["lb2"].Degraded {
				cleared = at - end
			}
		})
		// A tenth of the runs slow is a slow run every 12 s or so here: the
		// silence that ends the fault must be long enough not to end it
		// early, so clearing takes up to a window plus the newest
		// sub-windows (24 s) plus evaluations.
		if cleared < 0 || cleared > window+45*time.Second {
			t.Errorf("seed %d: lb2 cleared %s after the fault ended, want within %s", seed, cleared, window+45*time.Second)
		}
		t.Logf("seed %d: detected after %s, cleared %s after the end", seed, detected, cleared)
	}
}

// TestNodeDetectorClearsAFullFaultQuickly: a node slow on every run is
// cleared within a minute of the fault's end (its silence is long at its
// own rate of slow runs), not once its slow runs have left the window.
func TestNodeDetectorClearsAFullFaultQuickly(t *testing.T) {
	for seed := range uint64(4) {
		sim := newShopSim(t, seed, 2*time.Minute, time.Hour)
		sim.noise = 0.01
		sim.run(30*time.Minute, nil)
		sim.fault = 1
		sim.run(3*time.Minute, nil)
		if v := sim.det.Verdicts(sim.clk.Now(), time.Minute)[2*time.Minute]; len(v) != 3 || !v[1].Degraded {
			t.Fatalf("seed %d: lb2 not degraded after 3 minutes of a full fault: %+v", seed, v)
		}
		sim.fault = 0
		end := sim.elapsed
		var cleared time.Duration = -1
		sim.run(3*time.Minute, func(at time.Duration, v map[string]NodeVerdict) {
			switch {
			case cleared < 0 && !v["lb2"].Degraded:
				cleared = at - end
			case cleared >= 0 && v["lb2"].Degraded:
				// The old fault's slow runs are still in the window after
				// the node is cleared; they must not page it again.
				t.Fatalf("seed %d: lb2 degraded again %s after the fault ended (cleared at %s)", seed, at-end, cleared)
			}
		})
		if cleared < 0 || cleared > time.Minute {
			t.Errorf("seed %d: cleared %s after a full fault ended, want within a minute", seed, cleared)
		}
		t.Logf("seed %d: cleared %s after the end", seed, cleared)
	}
}

// TestNodeDetectorNoisyHealthyShop: six simulated hours of a healthy shop
// whose runs are slowed at random by 3 % (the same on every node, as a busy
// host does) call no node degraded.
func TestNodeDetectorNoisyHealthyShop(t *testing.T) {
	sim := newShopSim(t, 42, 2*time.Minute, time.Hour)
	sim.noise = 0.03
	evals, best := 0, 0.0
	sim.run(6*time.Hour, func(at time.Duration, v map[string]NodeVerdict) {
		evals++
		for n, vd := range v {
			best = max(best, vd.Evidence)
			if vd.Degraded {
				t.Fatalf("%s degraded at %s of a healthy shop: %+v", n, at, vd.NodeEvidence)
			}
		}
	})
	t.Logf("%d evaluations, strongest evidence %.2f (fire at %.2f)", evals, best, -math.Log10(FireAlpha(sim.nd, sim.window)))
}

// TestNodeEvidenceNotEnoughData: too few runs, a check with two nodes,
// and siblings that all fail give no evidence at all rather than a guess.
func TestNodeEvidenceNotEnoughData(t *testing.T) {
	clk := newClock()
	st := New(Options{Config: config(time.Minute), Now: clk.Now})
	ps := paths{}
	nd := checks.DefaultNodeDetection
	// Three nodes, but only four runs each.
	for i := range 4 {
		for _, n := range []string{"lb1", "lb2", "lb3"} {
			d := 10 * time.Millisecond
			if n == "lb2" {
				d = 2 * time.Second
			}
			st.Observe(obs(target(t, ps, "few", "direct", n), d, true))
		}
		clk.Add(time.Duration(i+1) * time.Second)
	}
	// Two nodes with plenty of runs.
	for range 50 {
		st.Observe(obs(target(t, ps, "pair", "direct", "a"), 10*time.Millisecond, true))
		st.Observe(obs(target(t, ps, "pair", "direct", "b"), 2*time.Second, true))
	}
	// Siblings that fail every run.
	for range 50 {
		st.Observe(obs(target(t, ps, "down", "direct", "x1"), 2*time.Second, true))
		st.Observe(obs(target(t, ps, "down", "direct", "x2"), time.Millisecond, false))
		st.Observe(obs(target(t, ps, "down", "direct", "x3"), time.Millisecond, false))
	}
	ev := st.NodeEvidence(time.Minute, 0, nd)
	for _, n := range []string{"lb1", "lb2", "lb3", "a", "b", "x1"} {
		if e, ok := ev[n]; ok {
			t.Errorf("%s has evidence from too little data: %+v", n, e)
		}
	}
	// x2 and x3 fail where x1 succeeds: they are compared on failures (each
	// has one failing sibling and one working one), but latency has nothing
	// to compare against and x1 has no stratum.
	v := NewNodeDetector().Update(clk.Now(), time.Minute, ev, nd, 0)
	for n, vd := range v {
		if vd.Degraded && n != "x2" && n != "x3" {
			t.Errorf("%s degraded from too little data", n)
		}
	}
}

// TestNodeDetectorClockJumps: a wall clock stepped back an hour while a
// node is degraded clears it once its silence is long enough from then on,
// not an hour later; a step forward ends the silence at once. Neither
// makes a healthy node degraded.
func TestNodeDetectorClockJumps(t *testing.T) {
	nd := checks.DefaultNodeDetection
	bad := NodeEvidence{Node: "lb2", Strata: 3, Runs: 90, Bad: 20, SiblingRuns: 180, Expected: 1, P: 1e-12, Evidence: 12, Excess: time.Second, RecentBad: 3}
	quiet := bad
	quiet.RecentBad = 0
	ok := NodeEvidence{Node: "lb1", Strata: 3, Runs: 90, SiblingRuns: 180, Expected: 1, P: 1}
	for _, jump := range []time.Duration{-time.Hour, time.Hour} {
		d := NewNodeDetector()
		now := t0
		if v := d.Update(now, 2*time.Minute, map[string]NodeEvidence{"lb2": bad, "lb1": ok}, nd, 0); !v["lb2"].Degraded {
			t.Fatalf("jump %s: not degraded: %+v", jump, v["lb2"])
		}
		now = now.Add(jump)
		cleared := time.Duration(-1)
		for step := time.Duration(0); step <= 3*time.Minute; step += 5 * time.Second {
			v := d.Update(now.Add(step), 2*time.Minute, map[string]NodeEvidence{"lb2": quiet, "lb1": ok}, nd, 0)
			if v["lb1"].Degraded {
				t.Fatalf("jump %s: healthy lb1 degraded", jump)
			}
			if !v["lb2"].Degraded && cleared < 0 {
				cleared = step
			}
		}
		if cleared < 0 || cleared > 2*time.Minute {
			t.Errorf("jump %s: lb2 cleared %s after the jump, want within 2m", jump, cleared)
		}
	}
}

// TestNodeDetectorHoldAndDisappear: the daemon's own lag, as large as the
// excess of the slow runs, keeps a node from becoming degraded but marks it
// Held; a node that leaves (no evidence) loses its state.
func TestNodeDetectorHoldAndDisappear(t *testing.T) {
	nd := checks.DefaultNodeDetection
	strong := NodeEvidence{Node: "lb2", Strata: 3, Runs: 90, Bad: 20, SiblingRuns: 180, SiblingBad: 1, Expected: 7, P: 1e-12, Evidence: 12, Excess: 100 * time.Millisecond, RecentBad: 2}
	// The same evidence with no slow run just now (an ended fault still in
	// the window) does not make a node degraded.
	stale := strong
	stale.RecentBad = 0
	if v := NewNodeDetector().Update(t0, time.Minute, map[string]NodeEvidence{"lb2": stale}, nd, 0); v["lb2"].Degraded {
		t.Fatalf("degraded without a slow run just now: %+v", v["lb2"])
	}
	d := NewNodeDetector()
	now := t0
	v := d.Update(now, time.Minute, map[string]NodeEvidence{"lb2": strong}, nd, 150*time.Millisecond)
	if v["lb2"].Degraded || !v["lb2"].Held {
		t.Fatalf("held update: %+v", v["lb2"])
	}
	// Slow runs far slower than the daemon's lag are not its noise.
	far := strong
	far.Excess = time.Second
	if v := NewNodeDetector().Update(now, time.Minute, map[string]NodeEvidence{"lb2": far}, nd, 150*time.Millisecond); !v["lb2"].Degraded {
		t.Fatalf("1s slower runs held by 150ms of lag: %+v", v["lb2"])
	}
	v = d.Update(now.Add(5*time.Second), time.Minute, map[string]NodeEvidence{"lb2": strong}, nd, 0)
	if !v["lb2"].Degraded || !v["lb2"].Since.Equal(now.Add(5*time.Second)) {
		t.Fatalf("released update: %+v", v["lb2"])
	}
	// A hold never ends a degraded state early.
	v = d.Update(now.Add(10*time.Second), time.Minute, map[string]NodeEvidence{"lb2": strong}, nd, time.Second)
	if !v["lb2"].Degraded {
		t.Fatalf("hold cleared a degraded node: %+v", v["lb2"])
	}
	v = d.Update(now.Add(15*time.Second), time.Minute, map[string]NodeEvidence{}, nd, 0)
	if len(v) != 0 {
		t.Fatalf("verdicts for a node without evidence: %+v", v)
	}
	v = d.Update(now.Add(20*time.Second), time.Minute, map[string]NodeEvidence{"lb2": {Node: "lb2", Bad: 2, Expected: 1, P: 0.001}}, nd, 0)
	if v["lb2"].Degraded {
		t.Fatalf("a node that came back was still degraded with weak evidence: %+v", v["lb2"])
	}
	if len(d.Verdicts(now.Add(20*time.Second), time.Minute)[time.Minute]) != 1 {
		t.Fatal("Verdicts lost the latest evaluation")
	}
	if len(d.Verdicts(now.Add(5*time.Minute), time.Minute)) != 0 {
		t.Fatal("Verdicts kept a stale evaluation")
	}
}

func TestFireAlpha(t *testing.T) {
	nd := checks.DefaultNodeDetection
	if a := FireAlpha(nd, 2*time.Minute); math.Abs(a-2.0/10080/lookFactor) > 1e-12 {
		t.Errorf("FireAlpha(1/week, 2m) = %v", a)
	}
	nd.FalsePagesPerWeek = 168
	if a := FireAlpha(nd, time.Hour); a != MaxFireAlpha {
		t.Errorf("FireAlpha is capped at MaxFireAlpha, got %v", a)
	}
}
