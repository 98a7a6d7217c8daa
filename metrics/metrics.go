// Package metrics turns run observations into the Prometheus series of
// SPEC §5. Label names depend on the config (location, global and per-check
// labels), so the collector is "unchecked" and swaps its vectors when a
// reload changes the label set.
package metrics

import (
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// Labeler computes the common label names and each target's values.
type Labeler struct {
	names    []string
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
	return l
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

type vecSet struct {
	lab      *Labeler
	up       *prometheus.GaugeVec
	success  *prometheus.GaugeVec
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	phase    *prometheus.GaugeVec
	status   *prometheus.GaugeVec
	cert     *prometheus.GaugeVec
	browser  *browserVecs
	// maxDomains is global.max_domains_per_check.
	maxDomains int

	mu       sync.Mutex
	children map[string]*children
}

type children struct {
	values   []string
	up       prometheus.Gauge
	success  prometheus.Gauge
	runs     map[probe.Result]prometheus.Counter
	duration prometheus.Observer
	steps    map[string]bool // step label values with phase/status series
	hasCert  bool
	browser  *browserChildren // nil until a browser run is observed
}

// DurationBuckets are the classic buckets of the duration histograms; the
// native histogram alongside needs none.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

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
	return &vecSet{
		lab: lab,
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vantage_check_up",
			Help: "1 when the target is UP after down_after/up_after hysteresis, else 0."}, n),
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vantage_check_success",
			Help: "1 when the last run succeeded, else 0."}, n),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vantage_check_runs_total",
			Help: "Runs by result (success, failure, error, timeout)."}, with("result")),
		duration: prometheus.NewHistogramVec(HistogramOpts("vantage_check_duration_seconds",
			"Duration of successful runs."), n),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vantage_http_phase_seconds",
			Help: "Time of each request phase (dns, connect, tls, processing, transfer) in the last run."}, with("step", "phase")),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vantage_http_status_code",
			Help: "HTTP status code of each step in the last run."}, with("step")),
		cert: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vantage_tls_cert_not_after_timestamp_seconds",
			Help: "Expiry of the leaf certificate seen in the last TLS run, as a Unix timestamp."}, n),
		browser:  newBrowserVecs(n),
		children: map[string]*children{},
	}
}

// New returns a Collector for cfg; register it with the registry.
func New(cfg *checks.Config) *Collector {
	s := newVecSet(NewLabeler(cfg))
	s.maxDomains = cfg.Global.MaxDomainsPerCheck
	return &Collector{set: s}
}

// Configure adopts a reloaded config. When the label set is unchanged the
// series stay; otherwise every series starts anew under the new labels.
func (c *Collector) Configure(cfg *checks.Config) {
	lab := NewLabeler(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set.lab.Same(lab) {
		c.set.mu.Lock()
		c.set.maxDomains = cfg.Global.MaxDomainsPerCheck
		c.set.mu.Unlock()
		return
	}
	c.set = newVecSet(lab)
	c.set.maxDomains = cfg.Global.MaxDomainsPerCheck
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
	c.mu.RLock()
	s := c.set
	c.mu.RUnlock()
	s.up.Collect(ch)
	s.success.Collect(ch)
	s.runs.Collect(ch)
	s.duration.Collect(ch)
	s.phase.Collect(ch)
	s.status.Collect(ch)
	s.cert.Collect(ch)
	s.browser.collect(ch)
}

func (s *vecSet) get(t *probe.Target) *children {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.children[t.Key]
	if ch != nil {
		return ch
	}
	v := s.lab.Values(t)
	ch = &children{
		values:   v,
		up:       s.up.WithLabelValues(v...),
		success:  s.success.WithLabelValues(v...),
		duration: s.duration.WithLabelValues(v...),
		runs:     map[probe.Result]prometheus.Counter{},
		steps:    map[string]bool{},
	}
	for _, r := range probe.Results {
		ch.runs[r] = s.runs.WithLabelValues(append(slices.Clone(v), string(r))...)
	}
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
	ch.up.Set(b2f(o.Up))
	ch.success.Set(b2f(out.Result == probe.Success))
	ch.runs[out.Result].Inc()
	if out.Result == probe.Success {
		ch.duration.Observe(out.Duration.Seconds())
	}
	if !out.CertNotAfter.IsZero() {
		s.cert.WithLabelValues(ch.values...).Set(float64(out.CertNotAfter.Unix()))
		ch.hasCert = true
	}
	if o.Target.Check.Type == "browser" {
		s.observeBrowser(ch, o) // browser steps have their own series
		return
	}
	for i := range out.Steps {
		st := &out.Steps[i]
		lv := append(slices.Clone(ch.values), st.Name)
		s.mu.Lock()
		ch.steps[st.Name] = true
		s.mu.Unlock()
		if st.StatusCode != 0 {
			s.status.WithLabelValues(lv...).Set(float64(st.StatusCode))
		}
		p := st.Phases
		vals := [...]float64{p.DNS.Seconds(), p.Connect.Seconds(), p.TLS.Seconds(), p.Processing.Seconds(), p.Transfer.Seconds()}
		for j, name := range phaseNames {
			if (j == 0 && !p.HasDNS) || (j == 2 && !p.HasTLS) {
				continue
			}
			s.phase.WithLabelValues(append(slices.Clone(lv), name)...).Set(vals[j])
		}
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
	v := ch.values
	s.forgetBrowser(ch)
	s.up.DeleteLabelValues(v...)
	s.success.DeleteLabelValues(v...)
	s.duration.DeleteLabelValues(v...)
	s.cert.DeleteLabelValues(v...)
	for _, r := range probe.Results {
		s.runs.DeleteLabelValues(append(slices.Clone(v), string(r))...)
	}
	for step := range ch.steps {
		lv := append(slices.Clone(v), step)
		s.status.DeleteLabelValues(lv...)
		for _, name := range phaseNames {
			s.phase.DeleteLabelValues(append(slices.Clone(lv), name)...)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
