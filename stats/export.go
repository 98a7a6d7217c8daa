package stats

import (
	"slices"
	"time"

	"github.com/vantage-monitoring/vantage/probe"
)

// WindowFigures are one target's figures over one exported window.
type WindowFigures struct {
	Window   time.Duration
	OK, Runs uint64 // runs in the window, and the successful ones
	// Samples and Sum (seconds) are cumulative over the target's successful
	// runs since its series began, not over the window.
	Samples uint64
	Sum     float64
	// Quantiles are the latency quantiles at ExportedQuantiles, when
	// HasQuantiles (a successful run in the window).
	Quantiles    [len(ExportedQuantiles)]float64
	HasQuantiles bool
}

// TargetFigures are one target's figures for the exposition.
type TargetFigures struct {
	Target *probe.Target
	// Windows are the exported (quantile) windows with runs, shortest
	// first.
	Windows []WindowFigures
	// Slowdown is the target's node slowdown over the shortest exported
	// window (NodeSlowdown), when HasSlowdown.
	Slowdown    float64
	HasSlowdown bool
}

// Export computes the figures of every target now and calls fn with those
// of each check and path's targets (one group at a time, each target
// once) until fn returns false. The figures of a group are computed in one
// pass over its sketches; the slice fn gets is reused for the next group.
func (s *Stats) Export(fn func(group []TargetFigures) bool) {
	w := s.win.Load()
	groups := s.groupList()
	rd := s.reader()
	defer rd.close()
	p90 := slices.Index(ExportedQuantiles[:], 0.9)
	var (
		figs  []TargetFigures
		wins  []WindowFigures
		ends  []int // figs[i].Windows end at wins[ends[i]]
		p90s  []nodeP90
		owner []int // p90s[i] is of figs[owner[i]]
	)
	for _, g := range groups {
		figs, wins, ends, p90s, owner = figs[:0], wins[:0], ends[:0], p90s[:0], owner[:0]
		for _, ts := range g {
			for _, win := range w.exported {
				okRuns, total, samples, sum, ok := rd.mergeCum(ts.main, win)
				if !ok || total == 0 {
					continue
				}
				wf := WindowFigures{Window: win, OK: okRuns, Runs: total, Samples: samples, Sum: sum}
				if !rd.sk.IsEmpty() {
					wf.HasQuantiles = true
					for j, q := range ExportedQuantiles {
						wf.Quantiles[j], _ = rd.sk.GetValueAtQuantile(q)
					}
					if win == w.shortest {
						if node := ts.node(); node != "" {
							p90s = append(p90s, nodeP90{node, wf.Quantiles[p90]})
							owner = append(owner, len(figs))
						}
					}
				}
				wins = append(wins, wf)
			}
			figs = append(figs, TargetFigures{Target: ts.t.Load()})
			ends = append(ends, len(wins))
		}
		start := 0
		for i := range figs {
			figs[i].Windows = wins[start:ends[i]:ends[i]]
			start = ends[i]
		}
		if len(p90s) >= 3 { // a node needs two others with a p90
			for i, fi := range owner {
				figs[fi].Slowdown, figs[fi].HasSlowdown = slowdown(p90s[i].node, p90s[i].p90, p90s)
			}
		}
		if !fn(figs) {
			return
		}
	}
}
