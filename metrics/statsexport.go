package metrics

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/stats"
)

// Statistics are what the statistics families are computed from: figures
// keyed by target, computed at scrape time. *stats.Stats is one.
type Statistics interface {
	// Export calls fn with the figures of each check and path's targets
	// until fn returns false; fn must not keep the slice.
	Export(fn func(group []stats.TargetFigures) bool)
}

const (
	quantileName = "vantage_check_duration_quantile_seconds"
	ratioName    = "vantage_check_success_ratio"
	slowdownName = "vantage_node_slowdown_ratio"
)

// StatsExport exports the in-daemon statistics as
// vantage_check_duration_quantile_seconds, vantage_check_success_ratio
// (both with a window label) and vantage_node_slowdown_ratio, with the
// labels of the check series. It is a prometheus.Collector and an
// expo.Streamer.
type StatsExport struct {
	st    Statistics
	c     *Collector     // whose labels (and label pairs) the series share
	pairs expo.PairCache // shared window="…" pairs

	mu    sync.Mutex
	fams  *statsFamilies
	cache map[*probe.Target]*statsPairs
	gen   uint64 // scrapes begun
}

// NewStatsExport exports st's figures with the labels of c's series.
func NewStatsExport(st Statistics, c *Collector) *StatsExport {
	return &StatsExport{st: st, c: c, cache: map[*probe.Target]*statsPairs{}}
}

// statsFamilies are the exported families for one labeler.
type statsFamilies struct {
	lab                       *Labeler
	quantile, ratio, slowdown *expo.Family
}

func newStatsFamilies(lab *Labeler) *statsFamilies {
	n := lab.Names()
	with := func(extra ...string) []string { return append(slices.Clone(n), extra...) }
	return &statsFamilies{
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

func (x *StatsExport) familiesFor(lab *Labeler) *statsFamilies {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.fams == nil || x.fams.lab != lab {
		x.fams = newStatsFamilies(lab)
	}
	return x.fams
}

// statsPairs are a target's label pairs, and them with a window label,
// kept from scrape to scrape. The window sets are a short slice, not a
// map: at 100,000 targets a map per target was ~30 MB.
type statsPairs struct {
	lab   *Labeler // labeler pairs were built with
	pairs expo.LabelPairs
	win   []windowPairs
	gen   uint64 // the newest scrape that used them
}

// windowPairs are a target's label pairs with one window label.
type windowPairs struct {
	window string
	pairs  expo.LabelPairs
}

// targetPairs are t's label pairs under lab, for scrape gen; wp gets
// them with each of the window labels in windows. One lock and one lookup
// per target and scrape.
func (x *StatsExport) targetPairs(t *probe.Target, lab *Labeler, windows []string, wp []expo.LabelPairs, gen uint64) expo.LabelPairs {
	x.mu.Lock()
	defer x.mu.Unlock()
	// By target, not key: a target rebuilt by a reload under the same key
	// may have new labels.
	sp := x.cache[t]
	if sp == nil || sp.lab != lab {
		// The check series' pairs when they have them: each target's
		// set then exists once.
		p := x.c.TargetPairs(t, lab)
		if p == nil {
			p = lab.Pairs(lab.Values(t), &x.pairs)
		}
		sp = &statsPairs{lab: lab, pairs: p}
		x.cache[t] = sp
	}
	sp.gen = max(sp.gen, gen)
	for i, w := range windows {
		wp[i] = sp.window(w, &x.pairs)
	}
	return sp.pairs
}

// window is the pairs plus window="w".
func (sp *statsPairs) window(w string, pc *expo.PairCache) expo.LabelPairs {
	for _, wp := range sp.win {
		if wp.window == w {
			return wp.pairs
		}
	}
	wp := sp.pairs.WithPair(pc.Get("window", w))
	sp.win = append(sp.win, windowPairs{w, wp})
	return wp
}

// prune drops the pairs of targets that scrape gen, which saw every
// target, did not use: the target is gone or has no figures.
func (x *StatsExport) prune(gen uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, sp := range x.cache {
		if sp.gen < gen {
			delete(x.cache, k)
		}
	}
}

// Describe sends nothing: the collector is unchecked because its label
// names follow the config.
func (x *StatsExport) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (x *StatsExport) Collect(ch chan<- prometheus.Metric) {
	x.emit(expo.ChanEmitter(ch))
}

// Stream implements expo.Streamer. The three families are computed in
// one pass over the sketches: the quantile summaries are written as they
// come, the two gauge families are held back and written after.
func (x *StatsExport) Stream(e expo.Emitter, want func(string) bool) {
	if want != nil && !want(ratioName) && !want(quantileName) && !want(slowdownName) {
		return
	}
	g := expo.Grouper{Out: filtered{e, want}}
	x.emit(&g)
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

// emit writes every figure, computed now; series without data in a
// window are absent.
func (x *StatsExport) emit(e expo.Emitter) {
	lab := x.c.Labeler()
	d := x.familiesFor(lab)
	x.mu.Lock()
	x.gen++
	gen := x.gen
	x.mu.Unlock()

	type winLabel struct {
		w time.Duration
		s string
	}
	var labels []winLabel // a few windows: a slice beats a map
	label := func(w time.Duration) string {
		for _, l := range labels {
			if l.w == w {
				return l.s
			}
		}
		s := model.Duration(w).String()
		labels = append(labels, winLabel{w, s})
		return s
	}
	var (
		wl   []string          // a target's window labels
		wp   []expo.LabelPairs // its pairs with them
		base []expo.LabelPairs // each target's pairs in a group
	)
	complete, gi := true, 0
	x.st.Export(func(group []stats.TargetFigures) bool {
		if gi%256 == 0 && e.Err() != nil {
			complete = false
			return false // the scrape failed or its client gave up: stop computing
		}
		gi++
		base = slices.Grow(base[:0], len(group))[:len(group)]
		for i := range group {
			tf := &group[i]
			base[i] = nil
			if len(tf.Windows) == 0 {
				continue // no figures, no series
			}
			wl = wl[:0]
			for j := range tf.Windows {
				wl = append(wl, label(tf.Windows[j].Window))
			}
			wp = slices.Grow(wp[:0], len(wl))[:len(wl)]
			base[i] = x.targetPairs(tf.Target, lab, wl, wp, gen)
			for j := range tf.Windows {
				wf := &tf.Windows[j]
				e.Gauge(d.ratio, wp[j], float64(wf.OK)/float64(wf.Runs))
				if wf.HasQuantiles {
					// Emitters copy the values.
					e.Summary(d.quantile, wp[j], wf.Samples, wf.Sum, stats.ExportedQuantiles[:], wf.Quantiles[:])
				}
			}
		}
		for i := range group {
			// A slowdown needs a p90 in the shortest window: the target
			// has figures, so base[i] is set.
			if tf := &group[i]; tf.HasSlowdown && base[i] != nil {
				e.Gauge(d.slowdown, base[i], tf.Slowdown)
			}
		}
		return true
	})
	if complete && e.Err() == nil {
		x.prune(gen)
	}
}
