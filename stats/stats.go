// Package stats keeps vantage's in-process latency statistics (docs/statistics.md):
// sliding-window quantiles and success ratios per target, per step and per
// browser domain, and the node slowdown that compares a load-balancer node
// with its siblings. Alerting and the status page query it directly; the
// metrics package exports the figures (Export) so dashboards need no
// histogram_quantile.
//
// Each series keeps, per window, a ring of 10 sub-window DDSketches
// (sketches-go, 1 % relative accuracy) aligned on the wall clock: a 5m
// window is 10 × 30s. Reads merge the sub-windows. The current sub-window is
// its occupied bins; closed ones are kept in the sketch's compact binary
// encoding, so memory per series-window depends on how many distinct 1 %
// bins the latencies occupy, never on how many runs there were.
//
// A read covers the current, partial sub-window and the 9 before it: no
// sample older than the window is ever counted, and every sample younger
// than 90 % of the window is. Samples between 90 % and 100 % of the window
// old drop out up to one sub-window early.
//
// Only successful runs feed the latency quantiles: a failed run's duration
// is how long it took to fail (a refused connection takes a millisecond, a
// timeout takes the whole timeout) and would drag the quantiles either way.
// Every run counts toward the success ratio and the failure count, so a
// failing target shows up there instead.
package stats

import (
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// RelativeAccuracy is the sketches' relative error bound on quantiles.
const RelativeAccuracy = 0.01

// ExportedQuantiles are the quantiles Export computes; never modified.
var ExportedQuantiles = [...]float64{0.5, 0.9, 0.99}

// Key names a series: a target, or one of its steps or browser domains.
type Key struct {
	Target string // probe.Target.Key
	Step   string // step name, or empty
	Domain string // browser request domain, or empty
}

// Options configure a Stats.
type Options struct {
	// Config gives the windows; Configure adopts reloads.
	Config *checks.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats holds every series. It is a probe.Sink. Safe for concurrent use.
type Stats struct {
	now     func() time.Time
	mapping mapping.IndexMapping
	scratch sync.Pool // *ddsketch.DDSketch with dense stores, for reads

	win atomic.Pointer[windows]

	// byKey mirrors targets for the lock-free lookup on every Observe: a
	// shared RWMutex's reader count would bounce between cores.
	byKey sync.Map // string → *targetSeries

	mu      sync.RWMutex
	targets map[string]*targetSeries
	// groups are the series of each check+path: a slice, not a map, since
	// most checks have one target and a map each was ~250 bytes.
	groups map[string][]*targetSeries
}

// windows is one configuration's set of windows.
type windows struct {
	all        []time.Duration // sorted, unique: quantile windows and alert windows
	exported   []time.Duration // sorted quantile windows
	shortest   time.Duration   // shortest exported window: node slowdown's
	maxDomains int
}

type targetSeries struct {
	key   string
	group string

	t atomic.Pointer[probe.Target]

	mu      sync.Mutex
	main    *series
	steps   map[string]*series
	domains map[string]*series
}

// series is one key's rings, one per window.
type series struct {
	mu    sync.Mutex
	rings []*ring
	// samples and sum are cumulative over successful runs since the series
	// began: the _count and _sum of the exported summary.
	samples uint64
	sum     float64
}

// New returns a Stats for o.Config.
func New(o Options) *Stats {
	m, err := mapping.NewLogarithmicMapping(RelativeAccuracy)
	if err != nil {
		panic(err) // a constant accuracy in (0, 1) cannot fail
	}
	s := &Stats{
		now: o.Now, mapping: m,
		targets: map[string]*targetSeries{},
		groups:  map[string][]*targetSeries{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.scratch.New = func() any {
		return ddsketch.NewDDSketch(m, store.NewDenseStore(), store.NewDenseStore())
	}
	cfg := o.Config
	if cfg == nil {
		cfg = &checks.Config{}
	}
	s.Configure(cfg)
	return s
}

func windowsOf(cfg *checks.Config) *windows {
	w := &windows{maxDomains: cfg.Global.MaxDomainsPerCheck}
	for _, d := range cfg.Global.QuantileWindows {
		if d > 0 {
			w.exported = append(w.exported, time.Duration(d))
		}
	}
	w.all = slices.Clone(w.exported)
	for _, a := range cfg.Alerts {
		if a.Window > 0 {
			w.all = append(w.all, time.Duration(a.Window))
		}
		if checks.IsDetectorMeasure(a.Expr.Measure) && cfg.Global.NodeDetection.Baseline > 0 {
			// The detector compares with the siblings over the baseline too.
			w.all = append(w.all, time.Duration(cfg.Global.NodeDetection.Baseline))
		}
	}
	slices.Sort(w.exported)
	w.exported = slices.Compact(w.exported)
	slices.Sort(w.all)
	w.all = slices.Compact(w.all)
	if len(w.exported) > 0 {
		w.shortest = w.exported[0]
	}
	return w
}

// Configure adopts a (reloaded) config: windows that stay keep their data,
// new windows start empty, windows no longer used are dropped.
func (s *Stats) Configure(cfg *checks.Config) {
	w := windowsOf(cfg)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Stored before the walk: a series created concurrently either sees the
	// new windows or is walked below.
	s.win.Store(w)
	for _, ts := range s.targets {
		ts.mu.Lock()
		s.rewindow(ts.main, w)
		for _, se := range ts.steps {
			s.rewindow(se, w)
		}
		for _, se := range ts.domains {
			s.rewindow(se, w)
		}
		ts.mu.Unlock()
	}
}

func (s *Stats) rewindow(se *series, w *windows) {
	se.mu.Lock()
	defer se.mu.Unlock()
	rings := make([]*ring, 0, len(w.all))
	for _, d := range w.all {
		r := se.ring(d)
		if r == nil {
			r = newRing(d)
		}
		rings = append(rings, r)
	}
	se.rings = rings
}

func (s *Stats) newSeries() *series {
	w := s.win.Load()
	se := &series{rings: make([]*ring, len(w.all))}
	for i, d := range w.all {
		se.rings[i] = newRing(d)
	}
	return se
}

func (se *series) ring(w time.Duration) *ring {
	for _, r := range se.rings {
		if r.window == w {
			return r
		}
	}
	return nil
}

func (s *Stats) observe(se *series, now int64, d time.Duration, ok bool) {
	sec := max(d.Seconds(), 0)
	index := noIndex
	if ok && sec > s.mapping.MinIndexableValue() {
		index = s.mapping.Index(sec)
	}
	sk := s.scratch.Get().(*ddsketch.DDSketch)
	se.mu.Lock()
	for _, r := range se.rings {
		r.observe(now, index, ok, sk)
	}
	if ok {
		se.samples++
		se.sum += sec
	}
	se.mu.Unlock()
	s.scratch.Put(sk)
}

func groupKey(t *probe.Target) string {
	path := ""
	if t.Path != nil {
		path = t.Path.Name()
	}
	return t.Check.Name + "\x00" + path
}

// target returns t's series, creating them on first use.
func (s *Stats) target(t *probe.Target) *targetSeries {
	if v, ok := s.byKey.Load(t.Key); ok {
		return v.(*targetSeries)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.targets[t.Key]; ts != nil {
		return ts
	}
	ts := &targetSeries{key: t.Key, group: groupKey(t), main: s.newSeries()}
	ts.t.Store(t)
	s.targets[t.Key] = ts
	s.byKey.Store(t.Key, ts)
	s.groups[ts.group] = append(s.groups[ts.group], ts)
	return ts
}

// sub returns the step or domain series name of ts, creating it unless
// that would exceed limit (0: no limit).
func (s *Stats) sub(ts *targetSeries, m *map[string]*series, name string, limit int) *series {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	se := (*m)[name]
	if se == nil {
		if limit > 0 && len(*m) >= limit {
			return nil
		}
		if *m == nil {
			*m = map[string]*series{}
		}
		se = s.newSeries()
		(*m)[name] = se
	}
	return se
}

// Observe implements probe.Sink. The run feeds the target's series; a
// multi-step run (HTTP steps, browser steps) also feeds one series per
// step, and a browser run's requests one series per domain.
func (s *Stats) Observe(o *probe.Observation) {
	t, out := o.Target, o.Outcome
	now := s.now().UnixNano()
	ts := s.target(t)
	if ts.t.Load() != t {
		// Same key, rebuilt target (a reload kept the key): follow it, so
		// its labels are current and a late Forget of the old one is
		// ignored.
		ts.t.Store(t)
	}
	s.observe(ts.main, now, out.Duration, out.Result == probe.Success)
	if len(out.Steps) > 1 || (len(out.Steps) > 0 && t.Check.Traits().StepSeries) {
		for i := range out.Steps {
			st := &out.Steps[i]
			if st.Result == "" {
				continue // not reached
			}
			s.observe(s.sub(ts, &ts.steps, st.Name, 0), now, st.Duration, st.Result == probe.Success)
		}
	}
	if len(out.Requests) > 0 {
		limit := s.win.Load().maxDomains
		for i := range out.Requests {
			rq := &out.Requests[i]
			if rq.Domain == "" || rq.Result == "blocked" {
				continue // blocked on purpose: says nothing about the domain
			}
			if se := s.sub(ts, &ts.domains, rq.Domain, limit); se != nil {
				s.observe(se, now, rq.Duration, rq.Result == "ok")
			}
		}
	}
}

// ObserveStep records one run of a step of t directly (for kinds that
// report steps outside Outcome.Steps; Observe already covers those).
func (s *Stats) ObserveStep(t *probe.Target, step string, d time.Duration, ok bool) {
	ts := s.target(t)
	s.observe(s.sub(ts, &ts.steps, step, 0), s.now().UnixNano(), d, ok)
}

// ObserveDomain records one request of t to a domain directly (Observe
// already covers Outcome.Requests). Domains beyond
// global.max_domains_per_check per target are not recorded.
func (s *Stats) ObserveDomain(t *probe.Target, domain string, d time.Duration, ok bool) {
	ts := s.target(t)
	if se := s.sub(ts, &ts.domains, domain, s.win.Load().maxDomains); se != nil {
		s.observe(se, s.now().UnixNano(), d, ok)
	}
}

// Forget implements probe.Sink: the target's series, with its step and
// domain series, are dropped. A Forget for a target whose key has already
// been taken over by a newer Target is ignored.
func (s *Stats) Forget(t *probe.Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.targets[t.Key]
	if ts == nil {
		return
	}
	if ts.t.Load() != t {
		return
	}
	delete(s.targets, t.Key)
	s.byKey.Delete(t.Key)
	g := slices.DeleteFunc(s.groups[ts.group], func(m *targetSeries) bool { return m == ts })
	if len(g) == 0 {
		delete(s.groups, ts.group)
	} else {
		s.groups[ts.group] = g
	}
}

// lookup finds the series of k.
func (s *Stats) lookup(k Key) *series {
	v, ok := s.byKey.Load(k.Target)
	if !ok {
		return nil
	}
	ts := v.(*targetSeries)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch {
	case k.Step != "" && k.Domain != "":
		return nil
	case k.Step != "":
		return ts.steps[k.Step]
	case k.Domain != "":
		return ts.domains[k.Domain]
	}
	return ts.main
}

// WindowStats are one series' figures over one window.
type WindowStats struct {
	Window   time.Duration
	Runs     int // runs in the window
	OK       int // successful runs
	Samples  int // latency samples (successful runs)
	P50, P90 float64
	P99      float64 // seconds; valid when Samples > 0
}

// SuccessRatio is OK/Runs; NaN without runs.
func (w WindowStats) SuccessRatio() float64 {
	if w.Runs == 0 {
		return math.NaN()
	}
	return float64(w.OK) / float64(w.Runs)
}

// reader computes figures over windows; it owns a scratch sketch.
type reader struct {
	s   *Stats
	sk  *ddsketch.DDSketch
	now int64
}

func (s *Stats) reader() *reader {
	return &reader{s: s, sk: s.scratch.Get().(*ddsketch.DDSketch), now: s.now().UnixNano()}
}

func (rd *reader) close() { rd.s.scratch.Put(rd.sk) }

// merge fills rd.sk with se's window w; ok is false when se has no such
// window.
func (rd *reader) merge(se *series, w time.Duration) (okRuns, total uint64, ok bool) {
	okRuns, total, _, _, ok = rd.mergeCum(se, w)
	return okRuns, total, ok
}

// mergeCum is merge that also returns the cumulative sample count and sum.
func (rd *reader) mergeCum(se *series, w time.Duration) (okRuns, total, samples uint64, sum float64, ok bool) {
	rd.sk.Clear()
	se.mu.Lock()
	defer se.mu.Unlock()
	r := se.ring(w)
	if r == nil {
		return 0, 0, 0, 0, false
	}
	okRuns, total = r.read(rd.now, rd.sk)
	return okRuns, total, se.samples, se.sum, true
}

// mergeLast fills rd.sk with the newest n sub-windows of se's window w.
func (rd *reader) mergeLast(se *series, w time.Duration, n int) (okRuns, total uint64, ok bool) {
	rd.sk.Clear()
	se.mu.Lock()
	defer se.mu.Unlock()
	r := se.ring(w)
	if r == nil {
		return 0, 0, false
	}
	okRuns, total = r.readLast(rd.now, n, rd.sk)
	return okRuns, total, true
}

func (rd *reader) stats(se *series, w time.Duration) (WindowStats, bool) {
	okRuns, total, ok := rd.merge(se, w)
	if !ok {
		return WindowStats{}, false
	}
	ws := WindowStats{Window: w, Runs: int(total), OK: int(okRuns), Samples: int(rd.sk.GetCount())}
	if ws.Samples > 0 {
		ws.P50, _ = rd.sk.GetValueAtQuantile(0.5)
		ws.P90, _ = rd.sk.GetValueAtQuantile(0.9)
		ws.P99, _ = rd.sk.GetValueAtQuantile(0.99)
	}
	return ws, true
}

func (rd *reader) quantile(se *series, w time.Duration, q float64) (float64, bool) {
	if _, _, ok := rd.merge(se, w); !ok || rd.sk.IsEmpty() {
		return 0, false
	}
	v, err := rd.sk.GetValueAtQuantile(q)
	return v, err == nil
}

// Quantile is the q-quantile (0 ≤ q ≤ 1) of successful run durations of k
// over window, in seconds; false when window is not kept, k is unknown or
// there was no successful run in the window.
func (s *Stats) Quantile(k Key, window time.Duration, q float64) (float64, bool) {
	se := s.lookup(k)
	if se == nil || q < 0 || q > 1 || q != q {
		return 0, false
	}
	rd := s.reader()
	defer rd.close()
	return rd.quantile(se, window, q)
}

// SuccessRatio is the share of k's runs over window that succeeded; false
// without runs in the window.
func (s *Stats) SuccessRatio(k Key, window time.Duration) (float64, bool) {
	ws, ok := s.window(k, window)
	if !ok || ws.Runs == 0 {
		return 0, false
	}
	return ws.SuccessRatio(), true
}

// Failures is the number of k's runs over window that did not succeed;
// false without runs in the window.
func (s *Stats) Failures(k Key, window time.Duration) (int, bool) {
	ws, ok := s.window(k, window)
	if !ok || ws.Runs == 0 {
		return 0, false
	}
	return ws.Runs - ws.OK, true
}

// Window returns every figure of k over window at once.
func (s *Stats) Window(k Key, window time.Duration) (WindowStats, bool) {
	return s.window(k, window)
}

func (s *Stats) window(k Key, window time.Duration) (WindowStats, bool) {
	se := s.lookup(k)
	if se == nil {
		return WindowStats{}, false
	}
	rd := s.reader()
	defer rd.close()
	return rd.stats(se, window)
}

// Windows are the kept windows (quantile windows and alert windows) and
// the exported ones (quantile windows), both sorted.
func (s *Stats) Windows() (all, exported []time.Duration) {
	w := s.win.Load()
	return slices.Clone(w.all), slices.Clone(w.exported)
}

// NodeSlowdown is target's p90 over the shortest quantile window divided by
// the (low) median p90 of the other nodes of the same check and path; false
// when the target has no node, no p90, or fewer than two other nodes have
// one.
func (s *Stats) NodeSlowdown(target string) (float64, bool) {
	return s.NodeSlowdownOver(target, s.win.Load().shortest)
}

// NodeSlowdownOver is NodeSlowdown over a given kept window (an alert's).
func (s *Stats) NodeSlowdownOver(target string, window time.Duration) (float64, bool) {
	s.mu.RLock()
	ts := s.targets[target]
	var members []*targetSeries
	if ts != nil {
		for _, m := range s.groups[ts.group] {
			members = append(members, m)
		}
	}
	s.mu.RUnlock()
	if ts == nil {
		return 0, false
	}
	rd := s.reader()
	defer rd.close()
	var own float64
	var ownOK bool
	var group []nodeP90
	for _, m := range members {
		p, ok := rd.quantile(m.main, window, 0.9)
		if !ok {
			continue
		}
		if m == ts {
			own, ownOK = p, true
		}
		group = append(group, nodeP90{m.node(), p})
	}
	if !ownOK {
		return 0, false
	}
	return slowdown(ts.node(), own, group)
}

type nodeP90 struct {
	node string
	p90  float64
}

// slowdown divides p90 by the median of the p90s of group members on other
// nodes.
func slowdown(node string, p90 float64, group []nodeP90) (float64, bool) {
	if node == "" {
		return 0, false
	}
	others := make([]float64, 0, len(group))
	for _, g := range group {
		if g.node != node {
			others = append(others, g.p90)
		}
	}
	if len(others) < 2 {
		return 0, false
	}
	return SlowdownRatio(p90, others)
}

// SlowdownFloor is the least the siblings' median p90 counts as, in
// seconds. Without it, on an endpoint answering in a millisecond or two,
// scheduling jitter alone reads as "3× slower than its siblings"; a node
// must be slower by an amount a customer could notice.
const SlowdownFloor = 0.010

// SlowdownRatio is p90 divided by the low median of the siblings' p90s,
// both taken as at least SlowdownFloor (so equally fast nodes read 1,
// however fast); false with fewer than two siblings. The low
// median: with two others (three nodes) it is the faster one, so one slow
// sibling cannot make a healthy node look fast; the mean of the middle two
// would put a healthy node next to a 10× slower one at 0.2. others is
// sorted in place.
func SlowdownRatio(p90 float64, others []float64) (float64, bool) {
	if len(others) < 2 {
		return 0, false
	}
	sort.Float64s(others)
	med := max(others[(len(others)-1)/2], SlowdownFloor)
	return max(p90, SlowdownFloor) / med, true
}

func (ts *targetSeries) node() string { return ts.t.Load().Node.Label() }

// SeriesStats is one series' figures for the status page.
type SeriesStats struct {
	Key               Key
	Check, Path, Node string
	Windows           []WindowStats // every kept window, shortest first
}

// Snapshot returns the figures of every series (targets, steps, domains)
// over every kept window, sorted by key.
func (s *Stats) Snapshot() []SeriesStats {
	s.mu.RLock()
	list := make([]*targetSeries, 0, len(s.targets))
	for _, ts := range s.targets {
		list = append(list, ts)
	}
	s.mu.RUnlock()
	wins := s.win.Load().all
	rd := s.reader()
	defer rd.close()
	var out []SeriesStats
	for _, ts := range list {
		t := ts.t.Load()
		ts.mu.Lock()
		type named struct {
			k  Key
			se *series
		}
		all := []named{{Key{Target: ts.key}, ts.main}}
		for n, se := range ts.steps {
			all = append(all, named{Key{Target: ts.key, Step: n}, se})
		}
		for n, se := range ts.domains {
			all = append(all, named{Key{Target: ts.key, Domain: n}, se})
		}
		ts.mu.Unlock()
		path := ""
		if t.Path != nil {
			path = t.Path.Name()
		}
		for _, n := range all {
			ss := SeriesStats{Key: n.k, Check: t.Check.Name, Path: path, Node: t.Node.Label()}
			for _, w := range wins {
				if ws, ok := rd.stats(n.se, w); ok {
					ss.Windows = append(ss.Windows, ws)
				}
			}
			out = append(out, ss)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Key, out[j].Key
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		return a.Domain < b.Domain
	})
	return out
}
