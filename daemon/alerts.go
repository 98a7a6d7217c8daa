package daemon

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/health"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/stats"
)

// certSink remembers each target's certificate expiry for cert_days_left.
type certSink struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newCertSink() *certSink { return &certSink{m: map[string]time.Time{}} }

func (c *certSink) Observe(o *probe.Observation) {
	if o.Outcome.CertNotAfter.IsZero() {
		return
	}
	c.mu.Lock()
	c.m[o.Target.Key] = o.Outcome.CertNotAfter
	c.mu.Unlock()
}

func (c *certSink) Forget(t *probe.Target) {
	c.mu.Lock()
	delete(c.m, t.Key)
	c.mu.Unlock()
}

func (c *certSink) get(key string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	return t, ok
}

// measures answers alert measures from the statistics. Window figures are
// computed once per series and window per evaluation cycle, however many
// rules ask; node_slowdown reuses them too, so a target's window is merged
// once per cycle rather than once per sibling (3× for three nodes).
type measures struct {
	st     *stats.Stats
	certs  *certSink
	now    func() time.Time
	det    *stats.NodeDetector
	health *health.Monitor
	cfg    func() *checks.Config

	mu   sync.Mutex
	memo memo
	// siblings maps a target to the targets of its check and path (itself
	// included), from the cycle's series (see track).
	siblings map[string][]sibling
	// labels caches each target's label map for labFor (used only from the
	// evaluation goroutine, through series).
	labels map[*probe.Target]map[string]string
	labFor *metrics.Labeler
	// data caches each target's Series.Data (its node_address).
	data map[*probe.Target]map[string]string
}

type sibling struct{ target, node string }

// track records the cycle's targets grouped by check and path, for
// node_slowdown, and returns series unchanged.
func (m *measures) track(series []alerting.Series) []alerting.Series {
	groups := map[[2]string][]sibling{}
	for _, s := range series {
		if s.Domain != "" {
			continue
		}
		k := [2]string{s.Labels["check"], s.Labels["path"]}
		groups[k] = append(groups[k], sibling{s.Target, s.Labels["node"]})
	}
	sib := make(map[string][]sibling, len(series))
	for _, g := range groups {
		for _, s := range g {
			sib[s.target] = g
		}
	}
	m.mu.Lock()
	m.siblings = sib
	m.mu.Unlock()
	return series
}

// nodeSlowdown is stats.NodeSlowdownOver computed from the memoized window
// figures: the target's p90 divided by the low median of the p90s of its
// check and path on other nodes; false without a node, a p90, or two other
// nodes with one.
func (m *measures) nodeSlowdown(target string, window time.Duration) (float64, bool) {
	m.mu.Lock()
	group, tracked := m.siblings[target]
	m.mu.Unlock()
	if !tracked {
		return m.st.NodeSlowdownOver(target, window)
	}
	var own sibling
	for _, s := range group {
		if s.target == target {
			own = s
		}
	}
	if own.node == "" {
		return 0, false
	}
	ws, ok := m.window(stats.Key{Target: target}, window)
	if !ok || ws.Samples == 0 {
		return 0, false
	}
	others := make([]float64, 0, len(group))
	for _, s := range group {
		if s.node == own.node {
			continue
		}
		if o, ok := m.window(stats.Key{Target: s.target}, window); ok && o.Samples > 0 {
			others = append(others, o.P90)
		}
	}
	return stats.SlowdownRatio(ws.P90, others)
}

type memoKey struct {
	k stats.Key
	w time.Duration
}

type memoVal struct {
	ws stats.WindowStats
	ok bool
}

// memo holds one cycle's window figures. Target series (nearly all
// lookups) are keyed by the target key alone: hashing one string instead of
// a three-string struct is a measurable share of a 10k-target cycle.
type memo struct {
	targets map[time.Duration]map[string]memoVal
	other   map[memoKey]memoVal // domain (and step) series
	// verdicts are the node detector's, per window, updated once a cycle.
	verdicts map[time.Duration]map[string]stats.NodeVerdict
}

// Begin starts an evaluation cycle.
func (m *measures) Begin() {
	m.mu.Lock()
	m.memo = memo{}
	m.mu.Unlock()
}

func (m *measures) window(k stats.Key, w time.Duration) (stats.WindowStats, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k.Step == "" && k.Domain == "" {
		byT := m.memo.targets[w]
		if byT == nil {
			if m.memo.targets == nil {
				m.memo.targets = map[time.Duration]map[string]memoVal{}
			}
			byT = make(map[string]memoVal, 1024)
			m.memo.targets[w] = byT
		}
		if v, hit := byT[k.Target]; hit {
			return v.ws, v.ok
		}
		ws, ok := m.st.Window(k, w)
		byT[k.Target] = memoVal{ws, ok}
		return ws, ok
	}
	if v, hit := m.memo.other[memoKey{k, w}]; hit {
		return v.ws, v.ok
	}
	ws, ok := m.st.Window(k, w)
	if m.memo.other == nil {
		m.memo.other = map[memoKey]memoVal{}
	}
	m.memo.other[memoKey{k, w}] = memoVal{ws, ok}
	return ws, ok
}

// verdict is the node detector's verdict on s's node over window, updated
// once per evaluation cycle and window.
func (m *measures) verdict(s alerting.Series, window time.Duration) (stats.NodeVerdict, bool) {
	node := s.Labels["node"]
	if node == "" || m.det == nil {
		return stats.NodeVerdict{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vs, done := m.memo.verdicts[window]
	if !done {
		nd := m.cfg().Global.NodeDetection
		ev := m.st.NodeEvidence(window, time.Duration(nd.Baseline), nd)
		var lag time.Duration
		if m.health != nil && m.health.Degraded() {
			lag = m.health.Lag()
		}
		vs = m.det.Update(m.now(), window, ev, nd, lag)
		if m.memo.verdicts == nil {
			m.memo.verdicts = map[time.Duration]map[string]stats.NodeVerdict{}
		}
		m.memo.verdicts[window] = vs
	}
	v, ok := vs[node]
	return v, ok
}

// Explained implements alerting.Explainer: while the daemon's own
// measurements are degraded, a latency above a rule's threshold counts only
// if it stays above it once the daemon's lag is taken off: a p99 of 1.6 s
// against 1.5 s with 200 ms of lag could be the daemon's own wait. (The node
// detector makes the same comparison itself, against the excess of the
// slow runs it counted.)
func (m *measures) Explained(e checks.Expr, value float64) bool {
	if m.health == nil || !checks.IsDurationMeasure(e.Measure) || e.Measure == "measurement_lag" {
		return false
	}
	if e.Op != ">" && e.Op != ">=" {
		return false
	}
	if !m.health.Degraded() {
		return false
	}
	return !holds(e.Op, value-m.health.Lag().Seconds(), e.Value)
}

func holds(op string, v, threshold float64) bool {
	if op == ">" {
		return v > threshold
	}
	return v >= threshold
}

// Details implements alerting.Detailer: a node alert carries the evidence
// that raised it.
func (m *measures) Details(measure string, s alerting.Series, window time.Duration) map[string]string {
	if !checks.IsDetectorMeasure(measure) {
		return nil
	}
	v, ok := m.verdict(s, window)
	if !ok {
		return nil
	}
	d := map[string]string{
		"slow_share":         fmt.Sprintf("%.0f%%", 100*v.SlowShare()),
		"sibling_slow_share": fmt.Sprintf("%.1f%%", 100*v.SiblingSlowShare()),
		"slow_runs":          fmt.Sprintf("%d of %d", v.Bad, v.Runs),
		"slow_threshold":     "+" + v.Excess.String(),
		"p90":                alerting.FormatValue("p90", v.P90),
		"slow_runs_take":     slowTake(v),
		"sibling_p90":        alerting.FormatValue("p90", v.SiblingP90),
		"evidence":           fmt.Sprintf("%.1f", v.Evidence),
		"affected":           strings.Join(v.Affected, ", "),
	}
	if !v.Since.IsZero() {
		d["degraded_since"] = v.Since.UTC().Format(time.RFC3339)
	}
	return d
}

// slowTake says what the node's slow runs cost a customer: their median,
// or that they failed.
func slowTake(v stats.NodeVerdict) string {
	if v.SlowMedian <= 0 {
		return "failed"
	}
	return alerting.FormatValue("p90", v.SlowMedian)
}

// Measure implements alerting.Measures.
func (m *measures) Measure(measure string, s alerting.Series, window time.Duration) (float64, bool) {
	k := stats.Key{Target: s.Target, Domain: s.Domain}
	switch measure {
	case "node_slowdown":
		return m.nodeSlowdown(s.Target, window)
	case "node_degraded", "node_slow_share", "node_evidence":
		v, ok := m.verdict(s, window)
		if !ok {
			return 0, false
		}
		switch measure {
		case "node_degraded":
			if v.Degraded {
				return 1, true
			}
			return 0, true
		case "node_slow_share":
			return v.SlowShare(), true
		}
		return v.Evidence, true
	case "measurement_lag":
		if m.health == nil {
			return 0, false
		}
		return m.health.Lag().Seconds(), true
	case "cert_days_left":
		t, ok := m.certs.get(s.Target)
		if !ok {
			return 0, false
		}
		return t.Sub(m.now()).Hours() / 24, true
	}
	ws, ok := m.window(k, window)
	if !ok || ws.Runs == 0 {
		return 0, false
	}
	switch measure {
	case "success_ratio":
		return ws.SuccessRatio(), true
	case "failures":
		return float64(ws.Runs - ws.OK), true
	case "domain_error_ratio":
		return 1 - ws.SuccessRatio(), true
	}
	if ws.Samples == 0 {
		return 0, false
	}
	switch measure {
	case "p50":
		return ws.P50, true
	case "p90", "domain_p90":
		return ws.P90, true
	case "p99":
		return ws.P99, true
	}
	return 0, false
}

// series lists the targets (and, when a rule needs them, browser domains)
// with the labels alerts group by, and tracks them for node_slowdown. Each
// target's label map is built once and reused while the target and the
// labeler stay the same (a reload replaces both), so a cycle over 10k
// targets does not rebuild 10k maps.
func (m *measures) series(lab *metrics.Labeler, targets []*probe.Target, withDomains bool) []alerting.Series {
	if lab != m.labFor {
		m.labels, m.labFor = nil, lab
	}
	names := lab.Names()
	cache := make(map[*probe.Target]map[string]string, len(targets))
	dataCache := make(map[*probe.Target]map[string]string, len(targets))
	out := make([]alerting.Series, 0, len(targets))
	byKey := make(map[string]map[string]string, len(targets))
	dataByKey := make(map[string]map[string]string, len(targets))
	var noNode map[string]string
	for _, t := range targets {
		l := m.labels[t]
		if l == nil {
			vals := lab.Values(t)
			l = make(map[string]string, len(names))
			for i, n := range names {
				l[n] = vals[i]
			}
		}
		cache[t] = l
		byKey[t.Key] = l
		d := m.data[t]
		if d == nil {
			// Empty without a node, so templates print nothing rather than
			// "<no value>". Read only, so targets without a node share one.
			if addr := t.Node.Address(); addr != "" {
				d = map[string]string{"node_address": addr}
			} else {
				if noNode == nil {
					noNode = map[string]string{"node_address": ""}
				}
				d = noNode
			}
		}
		dataCache[t], dataByKey[t.Key] = d, d
		out = append(out, alerting.Series{Labels: l, Target: t.Key, Data: d})
	}
	m.labels, m.data = cache, dataCache
	if withDomains {
		for _, ss := range m.st.Snapshot() {
			if ss.Key.Domain == "" {
				continue
			}
			base := byKey[ss.Key.Target]
			if base == nil {
				continue
			}
			l := make(map[string]string, len(base)+1)
			for k, v := range base {
				l[k] = v
			}
			l["domain"] = ss.Key.Domain
			out = append(out, alerting.Series{Labels: l, Target: ss.Key.Target, Domain: ss.Key.Domain, Data: dataByKey[ss.Key.Target]})
		}
	}
	return m.track(out)
}
