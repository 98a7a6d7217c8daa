package daemon

import (
	"sync"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
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
// rules ask.
type measures struct {
	st    *stats.Stats
	certs *certSink
	now   func() time.Time

	mu   sync.Mutex
	memo map[memoKey]memoVal
}

type memoKey struct {
	k stats.Key
	w time.Duration
}

type memoVal struct {
	ws stats.WindowStats
	ok bool
}

// Begin starts an evaluation cycle.
func (m *measures) Begin() {
	m.mu.Lock()
	m.memo = map[memoKey]memoVal{}
	m.mu.Unlock()
}

func (m *measures) window(k stats.Key, w time.Duration) (stats.WindowStats, bool) {
	m.mu.Lock()
	if m.memo == nil {
		m.memo = map[memoKey]memoVal{}
	}
	v, hit := m.memo[memoKey{k, w}]
	m.mu.Unlock()
	if hit {
		return v.ws, v.ok
	}
	ws, ok := m.st.Window(k, w)
	m.mu.Lock()
	m.memo[memoKey{k, w}] = memoVal{ws, ok}
	m.mu.Unlock()
	return ws, ok
}

// Measure implements alerting.Measures.
func (m *measures) Measure(measure string, s alerting.Series, window time.Duration) (float64, bool) {
	k := stats.Key{Target: s.Target, Domain: s.Domain}
	switch measure {
	case "node_slowdown":
		return m.st.NodeSlowdownOver(s.Target, window)
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

// alertSeries lists the targets (and, when a rule needs them, browser
// domains) with the labels alerts group by.
func (d *Daemon) alertSeries(withDomains bool) []alerting.Series {
	lab := d.metrics.Labeler()
	names := lab.Names()
	var out []alerting.Series
	byKey := map[string]map[string]string{}
	for _, t := range d.sched.Targets() {
		vals := lab.Values(t)
		l := make(map[string]string, len(names))
		for i, n := range names {
			l[n] = vals[i]
		}
		byKey[t.Key] = l
		out = append(out, alerting.Series{Labels: l, Target: t.Key})
	}
	if withDomains {
		for _, ss := range d.stats.Snapshot() {
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
			out = append(out, alerting.Series{Labels: l, Target: ss.Key.Target, Domain: ss.Key.Domain})
		}
	}
	return out
}
