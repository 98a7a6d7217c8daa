package stats

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/metrics"
)

// descSet are the exported metrics' descriptors for one labeler.
type descSet struct {
	lab                       *metrics.Labeler
	quantile, ratio, slowdown *expo.Family
}

func newDescSet(lab *metrics.Labeler) *descSet {
	n := lab.Names()
	with := func(extra ...string) []string { return append(slices.Clone(n), extra...) }
	return &descSet{
		lab: lab,
		// A summary, not a gauge: its quantile series are exactly the
		// gauge the README's metrics table names, and only a summary may carry a `quantile`
		// label and still pass `promtool check metrics`. _count and _sum
		// are cumulative over successful runs, as in client_golang's own
		// summaries, so rate() on them works.
		quantile: expo.NewFamily(quantileName,
			"Quantiles of successful run durations over a sliding window (DDSketch, 1% relative error); _count and _sum are cumulative.",
			dto.MetricType_SUMMARY, with("window")),
		ratio: expo.NewFamily(ratioName,
			"Share of runs that succeeded over a sliding window.", dto.MetricType_GAUGE, with("window")),
		slowdown: expo.NewFamily(slowdownName,
			"A node's p90 over the shortest quantile window divided by the median p90 of the other nodes of the same check and path.",
			dto.MetricType_GAUGE, n),
	}
}

func (s *Stats) descsFor(lab *metrics.Labeler) *descSet {
	s.mu.RLock()
	d := s.descs
	s.mu.RUnlock()
	if d != nil && d.lab == lab {
		return d
	}
	d = newDescSet(lab)
	s.mu.Lock()
	s.descs = d
	s.mu.Unlock()
	return d
}

// labelPairs are ts's label pairs under lab, and with a window label,
// cached per labeler and target. The window sets are a short slice, not a
// map: at 100,000 targets a map per target was ~30 MB.
func (s *Stats) labelPairs(ts *targetSeries, lab *metrics.Labeler, window string) expo.LabelPairs {
	t := ts.t.Load()
	ts.mu.Lock()
	stale := ts.lab != lab || ts.labT != t || ts.pairs == nil
	ts.mu.Unlock()
	if stale {
		var p expo.LabelPairs
		if s.sharedPairs != nil {
			p = s.sharedPairs(t, lab)
		}
		if p == nil {
			p = lab.Pairs(lab.Values(t), &s.pairs)
		}
		ts.mu.Lock()
		ts.lab, ts.labT, ts.pairs, ts.winPairs = lab, t, p, nil
		ts.mu.Unlock()
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if window == "" {
		return ts.pairs
	}
	for _, wp := range ts.winPairs {
		if wp.window == window {
			return wp.pairs
		}
	}
	wp := ts.pairs.WithPair(s.pairs.Get("window", window))
	ts.winPairs = append(ts.winPairs, windowPairs{window, wp})
	return wp
}

// windowPairs are a target's label pairs with one window label.
type windowPairs struct {
	window string
	pairs  expo.LabelPairs
}

// Describe sends nothing: the collector is unchecked because its label
// names follow the config.
func (s *Stats) Describe(chan<- *prometheus.Desc) {}

const (
	quantileName = "vantage_check_duration_quantile_seconds"
	ratioName    = "vantage_check_success_ratio"
	slowdownName = "vantage_node_slowdown_ratio"
)

// Collect implements prometheus.Collector.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	s.emit(expo.ChanEmitter(ch))
}

// Stream implements expo.Streamer. The three families are computed in
// one pass over the sketches: the quantile summaries are written as they
// come, the two gauge families are held back and written after.
func (s *Stats) Stream(e expo.Emitter, want func(string) bool) {
	if want != nil && !want(ratioName) && !want(quantileName) && !want(slowdownName) {
		return
	}
	g := expo.Grouper{Out: filtered{e, want}}
	s.emit(&g)
	g.Flush()
}

// filtered drops the families want does not ask for.
type filtered struct {
	expo.Emitter
	want func(string) bool
}

func (f filtered) ok(fam *expo.Family) bool { return f.want == nil || f.want(fam.Name()) }

func (f filtered) Gauge(fam *expo.Family, p expo.LabelPairs, v float64) {
	if f.ok(fam) {
		f.Emitter.Gauge(fam, p, v)
	}
}

func (f filtered) Summary(fam *expo.Family, p expo.LabelPairs, count uint64, sum float64, qs, vs []float64) {
	if f.ok(fam) {
		f.Emitter.Summary(fam, p, count, sum, qs, vs)
	}
}

// emit computes every figure now from the sketches; series without data
// in a window are absent.
func (s *Stats) emit(e expo.Emitter) {
	lab := s.labeler()
	if lab == nil {
		return
	}
	d := s.descsFor(lab)
	w := s.win.Load()
	groups := s.groupList()

	winLabels := make([]string, len(w.exported))
	for i, win := range w.exported {
		winLabels[i] = model.Duration(win).String()
	}
	rd := s.reader()
	defer rd.close()
	var qbuf [len(exportedQuantiles)]float64
	var p90s []nodeP90
	var vals []float64
	var own []*targetSeries
	for gi, g := range groups {
		if gi%256 == 0 && e.Err() != nil {
			return // the scrape failed or its client gave up: stop computing
		}
		p90s, own, vals = p90s[:0], own[:0], vals[:0]
		for _, ts := range g {
			for i, win := range w.exported {
				okRuns, total, samples, sum, ok := rd.mergeCum(ts.main, win)
				if !ok || total == 0 {
					continue
				}
				wp := s.labelPairs(ts, lab, winLabels[i])
				e.Gauge(d.ratio, wp, float64(okRuns)/float64(total))
				if rd.sk.IsEmpty() {
					continue
				}
				vs := qbuf[:] // emitters copy the values
				for j, q := range exportedQuantiles {
					vs[j], _ = rd.sk.GetValueAtQuantile(q)
				}
				e.Summary(d.quantile, wp, samples, sum, exportedQuantiles[:], vs)
				if win == w.shortest {
					if node := ts.node(); node != "" {
						p90s = append(p90s, nodeP90{node, vs[slices.Index(exportedQuantiles[:], 0.9)]})
						own = append(own, ts)
					}
				}
			}
		}
		if len(p90s) < 3 {
			continue // a node needs two others with a p90
		}
		for i, ts := range own {
			if r, ok := slowdown(p90s[i].node, p90s[i].p90, p90s); ok {
				e.Gauge(d.slowdown, s.labelPairs(ts, lab, ""), r)
			}
		}
	}
}
