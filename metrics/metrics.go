// Package metrics turns run observations into the Prometheus series of
// the README's metrics table. Label names depend on the config (location, global and per-check
// labels), so the collector is "unchecked" and swaps its vectors when a
// reload changes the label set.
package metrics

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/probe"
)

// Labeler computes the common label names and each target's values.
type Labeler struct {
	names []string
	// order lists label indexes sorted by name, and namePtrs the names as
	// shared strings, for building each target's label pairs cheaply.
	order    []int
	namePtrs []*string
	extra    []string
	location string
	global   map[string]string
}

// NewLabeler derives label names from cfg: check, type, path, node, then
// location (when set), then the sorted union of global and check labels.
func NewLabeler(cfg *checks.Config) *Labeler {
	l := &Labeler{location: cfg.Global.Location, global: cfg.Global.Labels}
	set := map[string]bool{}
	for k := range cfg.Global.Labels {
		set[k] = true
	}
	for _, c := range cfg.Checks {
		for k := range c.Labels {
			set[k] = true
		}
	}
	for k := range set {
		l.extra = append(l.extra, k)
	}
	sort.Strings(l.extra)
	l.names = []string{"check", "type", "path", "node"}
	if l.location != "" {
		l.names = append(l.names, "location")
	}
	l.names = append(l.names, l.extra...)
	l.order = make([]int, len(l.names))
	l.namePtrs = make([]*string, len(l.names))
	for i := range l.names {
		l.order[i], l.namePtrs[i] = i, &l.names[i]
	}
	sort.Slice(l.order, func(a, b int) bool { return l.names[l.order[a]] < l.names[l.order[b]] })
	return l
}

// Pairs are values (in Names order) as sorted label pairs sharing the
// label-name strings. With pc, the pairs whose values many targets share
// (type, path, location, configured labels) come from pc: at 100,000
// targets a pair of its own per target and label was ~40 MB. check and
// node are per target (and resolved nodes come and go), so they are not
// cached, except the empty node of checks without nodes.
func (l *Labeler) Pairs(values []string, pc *expo.PairCache) expo.LabelPairs {
	p := make(expo.LabelPairs, len(l.order))
	for i, idx := range l.order {
		if pc != nil && idx != 0 && (idx != 3 || values[idx] == "") { // names[0] is check, [3] node
			p[i] = pc.Get(l.names[idx], values[idx])
			continue
		}
		v := values[idx]
		p[i] = &dto.LabelPair{Name: l.namePtrs[idx], Value: &v}
	}
	return p
}

// Names are the common label names in order.
func (l *Labeler) Names() []string { return l.names }

// Values are t's values for Names; a check label overrides a global one.
func (l *Labeler) Values(t *probe.Target) []string {
	v := make([]string, 0, len(l.names))
	v = append(v, t.Check.Name, t.Check.Type, t.Path.Name(), t.Node.Label())
	if l.location != "" {
		v = append(v, l.location)
	}
	for _, k := range l.extra {
		val, ok := t.Check.Labels[k]
		if !ok {
			val = l.global[k]
		}
		v = append(v, val)
	}
	return v
}

// Same reports whether two labelers give every target the same labels.
func (l *Labeler) Same(o *Labeler) bool {
	if o == nil || l.location != o.location || !slices.Equal(l.names, o.names) || len(l.global) != len(o.global) {
		return false
	}
	for k, v := range l.global {
		if o.global[k] != v {
			return false
		}
	}
	return true
}

// Collector exports the per-target check series. It is a probe.Sink.
type Collector struct {
	mu  sync.RWMutex
	set *vecSet
}

// seriesDef is one per-target family of the check series: its descriptor
// and how its samples are read from a target's values.
type seriesDef struct {
	name, help string
	typ        dto.MetricType
	labels     []string // label names after the common ones
	// reads are the parts of targetValues beyond scalars the family needs
	// copied at scrape time.
	reads reads
	// off, when set, leaves the family out under global.metrics.
	off func(*checks.MetricsDetail) bool
	// emit writes one target's samples from a copy of its values.
	emit func(w *writer, v *targetValues)
}

// reads are parts of targetValues beyond scalars.
type reads int

const (
	readHist reads = 1 << iota
	readSteps
)

// perTarget are the per-target check series, in /metrics order (the
// browser series, client_golang vectors, follow them; see browser.go). A
// new per-target series is one entry here, for example
//
//	{name: "vantage_check_unsuccessful_runs_total", help: "Runs that did not succeed.",
//		typ: dto.MetricType_COUNTER, emit: func(w *writer, v *targetValues) {
//			w.e.Counter(w.f, w.pairs, v.runs[1]+v.runs[2]+v.runs[3])
//		}},
//
// plus, when it reads a value Observe does not record yet, that field in
// scalars (or targetValues, with a reads bit, for a slice) and its line in
// Observe. The table is never modified.
var perTarget = [...]seriesDef{
	{
		name: "vantage_check_up", help: "1 when the target is UP after down_after/up_after hysteresis, else 0.",
		typ: dto.MetricType_GAUGE,
		// Only check_up carries node_address: one label on one series per
		// target tells a node's name from its address without adding series.
		labels: []string{"node_address"},
		emit:   func(w *writer, v *targetValues) { w.gauge(w.x.withAddr(w.pairs, w.addr), b2f(v.up)) },
	},
	{
		name: "vantage_check_success", help: "1 when the last run succeeded, else 0.", typ: dto.MetricType_GAUGE,
		emit: func(w *writer, v *targetValues) { w.gauge(w.pairs, b2f(v.success)) },
	},
	{
		name: "vantage_check_runs_total", help: "Runs by result (success, failure, error, timeout).",
		typ: dto.MetricType_COUNTER, labels: []string{"result"},
		emit: func(w *writer, v *targetValues) {
			for i := range probe.Results {
				w.e.Counter(w.f, w.x.with(w.pairs, w.s.resultPairs[i], false), v.runs[i])
			}
		},
	},
	{
		name: "vantage_tls_cert_not_after_timestamp_seconds",
		help: "Expiry of the leaf certificate seen in the last TLS run, as a Unix timestamp.", typ: dto.MetricType_GAUGE,
		emit: func(w *writer, v *targetValues) {
			if v.hasCert {
				w.gauge(w.pairs, v.cert)
			}
		},
	},
	{
		name: "vantage_http_status_code", help: "HTTP status code of each step in the last run.",
		typ: dto.MetricType_GAUGE, labels: []string{"step"}, reads: readSteps,
		emit: func(w *writer, v *targetValues) {
			for i := range v.steps {
				if st := &v.steps[i]; st.status != 0 {
					w.gauge(w.x.with(w.pairs, w.s.pairs.Get("step", st.name), false), float64(st.status))
				}
			}
		},
	},
	{
		name: "vantage_http_phase_seconds",
		help: "Time of each request phase (dns, connect, tls, processing, transfer) in the last run.",
		typ:  dto.MetricType_GAUGE, labels: []string{"step", "phase"}, reads: readSteps,
		off: func(d *checks.MetricsDetail) bool { return !d.HTTPPhases },
		emit: func(w *writer, v *targetValues) {
			for i := range v.steps {
				st := &v.steps[i]
				withStep := w.x.with(w.pairs, w.s.pairs.Get("step", st.name), false)
				for j := range phaseNames {
					if st.has[j] {
						w.gauge(w.x.with(withStep, w.s.phasePairs[j], true), st.phases[j])
					}
				}
			}
		},
	},
	{
		name: "vantage_check_duration_seconds", help: "Duration of successful runs.",
		typ: dto.MetricType_HISTOGRAM, reads: readHist,
		emit: func(w *writer, v *targetValues) { w.hist(&v.hist) },
	},
}

// vecSet holds one label set's series. The per-target gauges, counters and
// the duration histogram are plain numbers turned into metrics at scrape
// time: at 10,000 targets a client_golang child per series (with its label
// pairs) cost ~100 MB of live heap, and a client_golang histogram with
// native buckets alone ~3 KB per target (see hist); values plus one label
// slice per target cost a few MB.
type vecSet struct {
	lab     *Labeler
	browser *browserVecs

	fams  []*expo.Family // by perTarget index
	pairs expo.PairCache
	// resultPairs are result="…" by resultIndex, phasePairs phase="…" by
	// phaseNames index.
	resultPairs [4]*dto.LabelPair
	phasePairs  [len(phaseNames)]*dto.LabelPair
	// detail is global.metrics: which series and buckets are exported.
	detail atomic.Pointer[checks.MetricsDetail]
	// maxDomains is global.max_domains_per_check.
	maxDomains int

	mu       sync.Mutex
	children map[string]*children
}

type children struct {
	values  []string
	pairs   expo.LabelPairs  // values as label pairs, built once
	addr    string           // the node's address, check_up's node_address
	browser *browserChildren // nil until a browser run is observed

	mu sync.Mutex // targetValues: Observe writes, Collect reads
	targetValues
}

// targetValues are what Observe records of a target's runs.
type targetValues struct {
	scalars
	hist  hist         // vantage_check_duration_seconds
	steps []stepValues // http steps of the last run
}

// scalars are the small values, copied for every family at scrape time.
type scalars struct {
	up      bool
	success bool
	runs    [4]float64 // by resultIndex
	cert    float64
	hasCert bool
}

// copyFrom copies src's scalars into v, and of its larger parts those in
// r, reusing v's slices.
func (v *targetValues) copyFrom(src *targetValues, r reads) {
	v.scalars = src.scalars
	if r&readHist != 0 {
		native := append(v.hist.native[:0], src.hist.native...)
		v.hist = src.hist
		v.hist.native = native
	}
	if r&readSteps != 0 {
		v.steps = append(v.steps[:0], src.steps...)
	}
}

// writer writes one family's samples for each target in turn.
type writer struct {
	e      expo.Emitter
	enc    *expo.Encoder // e, when it is an Encoder
	f      *expo.Family
	s      *vecSet
	x      *extraPairs
	detail *checks.MetricsDetail
	hs     histSample
	// pairs and addr are the current target's.
	pairs expo.LabelPairs
	addr  string
}

func (w *writer) gauge(p expo.LabelPairs, v float64) { w.e.Gauge(w.f, p, v) }

func (w *writer) hist(h *hist) {
	classic, native := w.detail.Classic(), w.detail.Native()
	if w.enc == nil {
		w.e.Metric(w.f, &histMetric{w.f, w.pairs, h.dto(classic, native)})
		return
	}
	w.hs.h, w.hs.classic, w.hs.native = h, classic, native
	w.enc.Histogram(w.f, w.pairs, &w.hs)
}

// extraPairs builds a target's pairs plus one or two labels at scrape
// time. Caching them per target (result × 4, node_address, step, step ×
// phase) cost ~1 KB per target, ~100 MB at 100,000 targets. For the
// Encoder, which is done with a sample's pairs when the call returns, they
// are built in reused buffers; other emitters keep the pairs (the
// registry path), so they get new ones.
type extraPairs struct {
	reuse      bool
	buf1, buf2 expo.LabelPairs
	addr       dto.LabelPair
	addrName   string
	addrValue  string
}

func newExtraPairs(e expo.Emitter) *extraPairs {
	_, reuse := e.(*expo.Encoder)
	x := &extraPairs{reuse: reuse, addrName: "node_address"}
	x.addr.Name, x.addr.Value = &x.addrName, &x.addrValue
	return x
}

// with is p plus lp; second selects the second buffer, so a result can be
// extended once more.
func (x *extraPairs) with(p expo.LabelPairs, lp *dto.LabelPair, second bool) expo.LabelPairs {
	if !x.reuse {
		return p.WithPair(lp)
	}
	buf := &x.buf1
	if second {
		buf = &x.buf2
	}
	*buf = p.AppendWith((*buf)[:0], lp)
	return *buf
}

// withAddr is p plus node_address=addr.
func (x *extraPairs) withAddr(p expo.LabelPairs, addr string) expo.LabelPairs {
	if !x.reuse {
		return p.With("node_address", addr)
	}
	x.addrValue = addr
	return x.with(p, &x.addr, false)
}

// stepValues are one step's last status and phase times.
type stepValues struct {
	name   string
	status int
	phases [len(phaseNames)]float64
	has    [len(phaseNames)]bool
}

func resultIndex(r probe.Result) int {
	switch r {
	case probe.Success:
		return 0
	case probe.Failure:
		return 1
	case probe.Error:
		return 2
	default:
		return 3
	}
}

// DurationBuckets are the classic buckets of the duration histograms; the
// native histogram alongside needs none.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// numBuckets is len(durationBuckets).
const numBuckets = 13

// HistogramOpts returns options for a histogram with classic buckets and a
// native (sparse) histogram, so old and new Prometheus servers both work.
func HistogramOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name: name, Help: help,
		Buckets:                         durationBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: 0,
	}
}

func newVecSet(lab *Labeler) *vecSet {
	n := lab.Names()
	s := &vecSet{
		lab:      lab,
		browser:  newBrowserVecs(n),
		fams:     make([]*expo.Family, len(perTarget)),
		children: map[string]*children{},
	}
	for i := range perTarget {
		d := &perTarget[i]
		s.fams[i] = expo.NewFamily(d.name, d.help, d.typ, append(slices.Clone(n), d.labels...))
	}
	for i, r := range probe.Results {
		s.resultPairs[i] = s.pairs.Get("result", string(r))
	}
	for i, name := range phaseNames {
		s.phasePairs[i] = s.pairs.Get("phase", name)
	}
	return s
}

// New returns a Collector for cfg; register it with the registry.
func New(cfg *checks.Config) *Collector {
	s := newVecSet(NewLabeler(cfg))
	s.configure(cfg)
	return &Collector{set: s}
}

// configure adopts the settings of cfg that need no new series.
func (s *vecSet) configure(cfg *checks.Config) {
	d := cfg.Global.Metrics
	if d.Histograms == "" { // a Config not from the loader
		d = checks.DefaultMetricsDetail
	}
	s.detail.Store(&d)
	s.mu.Lock()
	s.maxDomains = cfg.Global.MaxDomainsPerCheck
	s.mu.Unlock()
}

// Configure adopts a reloaded config. When the label set is unchanged the
// series stay; otherwise every series starts anew under the new labels.
func (c *Collector) Configure(cfg *checks.Config) {
	lab := NewLabeler(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set.lab.Same(lab) {
		c.set.configure(cfg)
		return
	}
	c.set = newVecSet(lab)
	c.set.configure(cfg)
}

// TargetPairs is t's label pairs as the check series hold them, or nil when
// the collector has no series for t or its labeler is not lab. Other
// collectors with the same labels reuse them instead of building copies.
func (c *Collector) TargetPairs(t *probe.Target, lab *Labeler) expo.LabelPairs {
	c.mu.RLock()
	s := c.set
	c.mu.RUnlock()
	if s.lab != lab {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.children[t.Key]; ch != nil {
		return ch.pairs
	}
	return nil
}

// Labeler returns the current labeler.
func (c *Collector) Labeler() *Labeler {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.set.lab
}

// Describe sends nothing: the collector is unchecked because its label
// names follow the config.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.Stream(expo.ChanEmitter(ch), nil)
}

// browserView is the index of the browser families' view, after
// perTarget's.
const browserView = len(perTarget)

// Views splits the collector into one collector per family (the browser
// families are one), so a streaming /metrics handler that falls back to
// client_golang's registry can gather and encode them one at a time (each
// in its own registry) instead of holding every sample at once.
func (c *Collector) Views() []prometheus.Collector {
	out := make([]prometheus.Collector, browserView+1)
	for i := range out {
		out[i] = view{c, i}
	}
	return out
}

type view struct {
	c *Collector
	i int // into perTarget, or browserView
}

func (v view) Describe(chan<- *prometheus.Desc) {}
func (v view) Collect(ch chan<- prometheus.Metric) {
	v.c.mu.RLock()
	s := v.c.set
	v.c.mu.RUnlock()
	if v.i == browserView {
		s.browser.stream(expo.ChanEmitter(ch), nil, s.detail.Load())
		return
	}
	s.collect(expo.ChanEmitter(ch), v.i)
}

// Stream implements expo.Streamer.
func (c *Collector) Stream(e expo.Emitter, want func(string) bool) {
	c.mu.RLock()
	s := c.set // one label set for the whole scrape, even across a reload
	c.mu.RUnlock()
	for i := range perTarget {
		if want == nil || want(perTarget[i].name) {
			s.collect(e, i)
		}
	}
	s.browser.stream(e, want, s.detail.Load())
}

// collect writes family perTarget[i] of every target.
func (s *vecSet) collect(e expo.Emitter, i int) {
	d := &perTarget[i]
	detail := s.detail.Load()
	if d.off != nil && d.off(detail) {
		return
	}
	s.mu.Lock()
	list := make([]*children, 0, len(s.children))
	for _, k := range s.children {
		list = append(list, k)
	}
	s.mu.Unlock()
	// Each target's values are copied under its lock and written after:
	// writing may block on a slow scraper, and the target's next run must
	// not wait for it.
	w := &writer{e: e, f: s.fams[i], s: s, x: newExtraPairs(e), detail: detail}
	w.enc, _ = e.(*expo.Encoder)
	var v targetValues
	for j, k := range list {
		if j%256 == 0 && e.Err() != nil {
			return // the scrape failed or its client gave up
		}
		k.mu.Lock()
		v.copyFrom(&k.targetValues, d.reads)
		k.mu.Unlock()
		w.pairs, w.addr = k.pairs, k.addr
		d.emit(w, &v)
	}
}

// streamVec emits every child of a client_golang vector as family f, with
// the buckets detail asks for. The children are listed first: a vector
// holds its lock while it collects, and a new child (a probe's first
// observation) must not wait for a slow scraper.
func streamVec(e expo.Emitter, f *expo.Family, c prometheus.Collector, detail *checks.MetricsDetail) {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var list []prometheus.Metric
	for m := range ch {
		list = append(list, m)
	}
	for i, m := range list {
		if i%256 == 0 && e.Err() != nil {
			return
		}
		if detail != nil && f.Type() == dto.MetricType_HISTOGRAM && (!detail.Classic() || !detail.Native()) {
			m = stripped{m, detail.Classic(), detail.Native()}
		}
		e.Metric(f, m)
	}
}

// stripped is a client_golang histogram without its classic or its native
// buckets.
type stripped struct {
	prometheus.Metric
	classic, native bool
}

func (s stripped) Write(out *dto.Metric) error {
	if err := s.Metric.Write(out); err != nil {
		return err
	}
	if h := out.Histogram; h != nil {
		if !s.classic {
			h.Bucket = nil
		}
		if !s.native {
			h.Schema, h.ZeroThreshold, h.ZeroCount, h.ZeroCountFloat = nil, nil, nil, nil
			h.PositiveSpan, h.PositiveDelta, h.PositiveCount = nil, nil, nil
			h.NegativeSpan, h.NegativeDelta, h.NegativeCount = nil, nil, nil
		}
	}
	return nil
}

func (s *vecSet) get(t *probe.Target) *children {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.children[t.Key]
	if ch != nil {
		return ch
	}
	v := s.lab.Values(t)
	ch = &children{values: v, pairs: s.lab.Pairs(v, &s.pairs), addr: t.Node.Address(), targetValues: targetValues{hist: newHist(time.Now())}}
	s.children[t.Key] = ch
	return ch
}

var phaseNames = [...]string{"dns", "connect", "tls", "processing", "transfer"}

// Observe implements probe.Sink.
func (c *Collector) Observe(o *probe.Observation) {
	c.mu.RLock()
	s := c.set
	c.mu.RUnlock()
	ch := s.get(o.Target)
	out := o.Outcome
	ch.mu.Lock()
	if out.Result == probe.Success {
		ch.hist.observe(out.Duration.Seconds())
	}
	ch.up = o.Up
	ch.success = out.Result == probe.Success
	ch.runs[resultIndex(out.Result)]++
	if !out.CertNotAfter.IsZero() {
		ch.cert, ch.hasCert = float64(out.CertNotAfter.Unix()), true
	}
	if !o.Target.Check.Traits().StepSeries { // such steps have their own series
		// The last run's steps replace the previous run's: a journey that
		// stops early exports only the steps it reached.
		ch.steps = ch.steps[:0]
		for i := range out.Steps {
			st := &out.Steps[i]
			p := st.Phases
			sv := stepValues{name: st.Name, status: st.StatusCode,
				phases: [...]float64{p.DNS.Seconds(), p.Connect.Seconds(), p.TLS.Seconds(), p.Processing.Seconds(), p.Transfer.Seconds()},
				has:    [...]bool{p.HasDNS, true, p.HasTLS, true, true}}
			ch.steps = append(ch.steps, sv)
		}
	}
	ch.mu.Unlock()
	if o.Target.Check.Traits().Pages {
		s.observeBrowser(ch, o)
	}
}

// Forget implements probe.Sink: the target's series go away.
func (c *Collector) Forget(t *probe.Target) {
	c.mu.RLock()
	s := c.set
	c.mu.RUnlock()
	s.mu.Lock()
	ch := s.children[t.Key]
	delete(s.children, t.Key)
	s.mu.Unlock()
	if ch == nil {
		return
	}
	s.forgetBrowser(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
