package stats

import (
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/probe"
)

// TestExport: Export gives each target once, in its check and path's
// group, with the figures the query API gives (ratio, quantiles,
// slowdown), only windows with runs, and stops when asked.
func TestExport(t *testing.T) {
	clk := newClock()
	s := New(Options{Config: config(5*time.Minute, time.Hour), Now: clk.Now})
	ps := paths{}
	api := target(t, ps, "api", "direct", "")
	s.Observe(obs(api, 10*time.Millisecond, false)) // a run, no latency sample
	clk.Add(6 * time.Minute)                        // api is in the hour only
	var lb []*probe.Target
	for i, p90 := range []time.Duration{100, 400, 120} {
		tg := target(t, ps, "shop", "direct", []string{"lb1", "lb2", "lb3"}[i])
		observeP90(s, tg, p90*time.Millisecond)
		lb = append(lb, tg)
	}
	s.Observe(obs(lb[0], time.Second, false))

	seen := map[string]int{}
	groups := 0
	s.Export(func(g []TargetFigures) bool {
		groups++
		for _, tf := range g {
			k := tf.Target.Key
			seen[k]++
			if tf.Target.Check.Name != g[0].Target.Check.Name {
				t.Errorf("%s grouped with %s", k, g[0].Target.Key)
			}
			var prev time.Duration
			for _, wf := range tf.Windows {
				if wf.Window <= prev {
					t.Errorf("%s: windows out of order", k)
				}
				prev = wf.Window
				ws, ok := s.Window(Key{Target: k}, wf.Window)
				if !ok || uint64(ws.Runs) != wf.Runs || uint64(ws.OK) != wf.OK || wf.Runs == 0 {
					t.Errorf("%s %v: exported %d/%d runs, Window says %d/%d", k, wf.Window, wf.OK, wf.Runs, ws.OK, ws.Runs)
				}
				if wf.HasQuantiles != (ws.Samples > 0) || wf.HasQuantiles &&
					(wf.Quantiles[0] != ws.P50 || wf.Quantiles[1] != ws.P90 || wf.Quantiles[2] != ws.P99) {
					t.Errorf("%s %v: exported quantiles %v (%v), Window says %+v", k, wf.Window, wf.Quantiles, wf.HasQuantiles, ws)
				}
			}
			sd, ok := s.NodeSlowdown(k)
			if tf.HasSlowdown != ok || tf.Slowdown != sd {
				t.Errorf("%s: exported slowdown %g (%v), NodeSlowdown %g (%v)", k, tf.Slowdown, tf.HasSlowdown, sd, ok)
			}
		}
		return true
	})
	if groups != 2 || len(seen) != 4 {
		t.Errorf("%d groups, targets %v; want 2 groups, 4 targets", groups, seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s exported %d times", k, n)
		}
	}
	var apiWindows []time.Duration
	s.Export(func(g []TargetFigures) bool {
		for _, tf := range g {
			if tf.Target == api {
				for _, wf := range tf.Windows {
					apiWindows = append(apiWindows, wf.Window)
				}
			}
		}
		return true
	})
	if len(apiWindows) != 1 || apiWindows[0] != time.Hour {
		t.Errorf("api exported windows %v, want [1h]", apiWindows)
	}
	calls := 0
	s.Export(func([]TargetFigures) bool { calls++; return false })
	if calls != 1 {
		t.Errorf("Export went on after false: %d calls", calls)
	}
}
