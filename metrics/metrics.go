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
func (l *Labeler) Pairs(values []string, pc *PairCache) LabelPairs {
	p := make(LabelPairs, len(l.order))
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

// vecSet holds one label set's series. The per-target gauges, counters and
// the duration histogram are plain numbers turned into metrics at scrape
// time: at 10,000 targets a client_golang child per series (with its label
// pairs) cost ~100 MB of live heap, and a client_golang histogram with
// native buckets alone ~3 KB per target (see hist); values plus one label
// slice per target cost a few MB.
type vecSet struct {
	lab     *Labeler
	browser *browserVecs

	upFam, successFam, runsFam, phaseFam, statusFam, certFam, durationFam *Family
	pairs                                                                 PairCache
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
	pairs   LabelPairs       // values as label pairs, built once
	addr    string           // the node's address, check_up's node_address
	browser *browserChildren // nil until a browser run is observed

	mu      sync.Mutex // the values below: Observe writes, Collect reads
	up      bool
	success bool
	runs    [4]float64 // by resultIndex
	cert    float64
	hasCert bool
	hist    hist         // vantage_check_duration_seconds
	steps   []stepValues // http steps of the last run
}

// extraPairs builds a target's pairs plus one or two labels at scrape
// time. Caching them per target (result × 4, node_address, step, step ×
// phase) cost ~1 KB per target, ~100 MB at 100,000 targets. For the
// Encoder, which is done with a sample's pairs when the call returns, they
// are built in reused buffers; other emitters keep the pairs (the
// registry path), so they get new ones.
type extraPairs struct {
	reuse      bool
	buf1, buf2 LabelPairs
	addr       dto.LabelPair
	addrName   string
	addrValue  string
}

func newExtraPairs(e Emitter) *extraPairs {
	_, reuse := e.(*Encoder)
	x := &extraPairs{reuse: reuse, addrName: "node_address"}
	x.addr.Name, x.addr.Value = &x.addrName, &x.addrValue
	return x
}

// with is p plus lp; second selects the second buffer, so a result can be
// extended once more.
func (x *extraPairs) with(p LabelPairs, lp *dto.LabelPair, second bool) LabelPairs {
	if !x.reuse {
		return p.WithPair(lp)
	}
	buf := &x.buf1
	if second {
		buf = &x.buf2
	}
	*buf = p.appendWithPair((*buf)[:0], lp)
	return *buf
}

// withAddr is p plus node_address=addr.
func (x *extraPairs) withAddr(p LabelPairs, addr string) LabelPairs {
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
	with := func(extra ...string) []string { return append(slices.Clone(n), extra...) }
	gauge := func(name, help string, labels []string) *Family {
		return NewFamily(name, help, dto.MetricType_GAUGE, labels)
	}
	const durationHelp = "Duration of successful runs."
	s := &vecSet{
		lab: lab,
		// Only check_up carries node_address: one label on one series per
		// target tells a node's name from its address without adding series.
		upFam: gauge("vantage_check_up",
			"1 when the target is UP after down_after/up_after hysteresis, else 0.", with("node_address")),
		successFam: gauge("vantage_check_success",
			"1 when the last run succeeded, else 0.", n),
		runsFam: NewFamily("vantage_check_runs_total",
			"Runs by result (success, failure, error, timeout).", dto.MetricType_COUNTER, with("result")),
		durationFam: NewFamily("vantage_check_duration_seconds", durationHelp, dto.MetricType_HISTOGRAM, n),
		phaseFam: gauge("vantage_http_phase_seconds",
			"Time of each request phase (dns, connect, tls, processing, transfer) in the last run.", with("step", "phase")),
		statusFam: gauge("vantage_http_status_code",
			"HTTP status code of each step in the last run.", with("step")),
		certFam: gauge("vantage_tls_cert_not_after_timestamp_seconds",
			"Expiry of the leaf certificate seen in the last TLS run, as a Unix timestamp.", n),
		browser:  newBrowserVecs(n),
		children: map[string]*children{},
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
func (c *Collector) TargetPairs(t *probe.Target, lab *Labeler) LabelPairs {
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
	c.Stream(ChanEmitter(ch), nil)
}

// part is one family (or group) of the collector's output.
type part int

const (
	partUp part = iota
	partSuccess
	partRuns
	partCert
	partStatus
	partPhase
	partDuration
	partBrowser
	numParts
)

// Views splits the collector into one collector per family, so a
// streaming /metrics handler that falls back to client_golang's registry
// can gather and encode them one at a time (each in its own registry)
// instead of holding every sample at once.
func (c *Collector) Views() []prometheus.Collector {
	out := make([]prometheus.Collector, numParts)
	for p := part(0); p < numParts; p++ {
		out[p] = view{c, p}
	}
	return out
}

type view struct {
	c *Collector
	p part
}

func (v view) Describe(chan<- *prometheus.Desc) {}
func (v view) Collect(ch chan<- prometheus.Metric) {
	v.c.mu.RLock()
	s := v.c.set
	v.c.mu.RUnlock()
	s.collect(ChanEmitter(ch), v.p)
}

// Stream implements Streamer.
func (c *Collector) Stream(e Emitter, want func(string) bool) {
	c.mu.RLock()
	s := c.set // one label set for the whole scrape, even across a reload
	c.mu.RUnlock()
	for p := part(0); p < numParts; p++ {
		if p == partBrowser {
			s.browser.stream(e, want, s.detail.Load())
			continue
		}
		if want == nil || want(s.partFamily(p).name) {
			s.collect(e, p)
		}
	}
}

func (s *vecSet) partFamily(p part) *Family {
	return [...]*Family{partUp: s.upFam, partSuccess: s.successFam, partRuns: s.runsFam, partCert: s.certFam,
		partStatus: s.statusFam, partPhase: s.phaseFam, partDuration: s.durationFam}[p]
}

func (s *vecSet) collect(e Emitter, p part) {
	detail := s.detail.Load()
	switch p {
	case partBrowser:
		s.browser.stream(e, nil, detail)
		return
	case partPhase:
		if !detail.HTTPPhases {
			return
		}
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
	var (
		h      hist
		native []uint32
		steps  []stepValues
	)
	enc, _ := e.(*Encoder)
	x := newExtraPairs(e)
	for i, k := range list {
		if i%256 == 0 && e.Err() != nil {
			return // the scrape failed or its client gave up
		}
		k.mu.Lock()
		up, success, runs, cert, hasCert := k.up, k.success, k.runs, k.cert, k.hasCert
		switch p {
		case partDuration:
			native = append(native[:0], k.hist.native...)
			h = k.hist
			h.native = native
		case partStatus, partPhase:
			steps = append(steps[:0], k.steps...)
		}
		k.mu.Unlock()
		switch p {
		case partUp:
			e.Gauge(s.upFam, x.withAddr(k.pairs, k.addr), b2f(up))
		case partSuccess:
			e.Gauge(s.successFam, k.pairs, b2f(success))
		case partRuns:
			for i := range probe.Results {
				e.Counter(s.runsFam, x.with(k.pairs, s.resultPairs[i], false), runs[i])
			}
		case partCert:
			if hasCert {
				e.Gauge(s.certFam, k.pairs, cert)
			}
		case partDuration:
			if enc != nil {
				enc.hist(s.durationFam, k.pairs, &h, detail.Classic(), detail.Native())
			} else {
				e.Metric(s.durationFam, &histMetric{s.durationFam, k.pairs, h.dto(detail.Classic(), detail.Native())})
			}
		case partStatus, partPhase:
			for i := range steps {
				st := &steps[i]
				stepLP := s.pairs.Get("step", st.name)
				if p == partStatus {
					if st.status != 0 {
						e.Gauge(s.statusFam, x.with(k.pairs, stepLP, false), float64(st.status))
					}
					continue
				}
				withStep := x.with(k.pairs, stepLP, false)
				for j := range phaseNames {
					if st.has[j] {
						e.Gauge(s.phaseFam, x.with(withStep, s.phasePairs[j], true), st.phases[j])
					}
				}
			}
		}
	}
}

// streamVec emits every child of a client_golang vector as family f, with
// the buckets detail asks for. The children are listed first: a vector
// holds its lock while it collects, and a new child (a probe's first
// observation) must not wait for a slow scraper.
func streamVec(e Emitter, f *Family, c prometheus.Collector, detail *checks.MetricsDetail) {
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
		if detail != nil && f.typ == dto.MetricType_HISTOGRAM && (!detail.Classic() || !detail.Native()) {
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
	ch = &children{values: v, pairs: s.lab.Pairs(v, &s.pairs), addr: t.Node.Address(), hist: newHist(time.Now())}
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
