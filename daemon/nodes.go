package daemon

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/stats"
	"github.com/vantage-monitoring/vantage/web"
)

// nodeCollector exports the node detector's latest verdicts, one series per
// node and alert window: whether the node is degraded and the evidence.
// They exist for the windows of rules that use the detector's measures,
// while those rules are evaluated.
type nodeCollector struct {
	det    *stats.NodeDetector
	now    func() time.Time
	cfg    func() *checks.Config
	maxAge time.Duration // verdicts older than this are stale (no rule asks any more)

	degraded, share, sibShare, evidence *prometheus.Desc
}

func newNodeCollector(det *stats.NodeDetector, now func() time.Time, cfg func() *checks.Config, maxAge time.Duration) *nodeCollector {
	labels := []string{"node", "window", "location"}
	return &nodeCollector{det: det, now: now, cfg: cfg, maxAge: maxAge,
		degraded: prometheus.NewDesc("vantage_node_degraded",
			"1 while the node detector finds the node worse than its siblings (measure node_degraded).", labels, nil),
		share: prometheus.NewDesc("vantage_node_slow_runs_ratio",
			"Share of the node's runs in the window that were slow or failed, pooled over its checks and paths (measure node_slow_share).", labels, nil),
		sibShare: prometheus.NewDesc("vantage_node_sibling_slow_runs_ratio",
			"The same share for the node's siblings, judged by the same thresholds.", labels, nil),
		evidence: prometheus.NewDesc("vantage_node_evidence",
			"-log10 of the p-value that the node is no worse than its siblings (measure node_evidence).", labels, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.degraded
	ch <- c.share
	ch <- c.sibShare
	ch <- c.evidence
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	loc := c.cfg().Global.Location
	for w, list := range c.det.Verdicts(c.now(), c.maxAge) {
		win := model.Duration(w).String()
		for _, v := range list {
			deg := 0.0
			if v.Degraded {
				deg = 1
			}
			ch <- prometheus.MustNewConstMetric(c.degraded, prometheus.GaugeValue, deg, v.Node, win, loc)
			ch <- prometheus.MustNewConstMetric(c.share, prometheus.GaugeValue, v.SlowShare(), v.Node, win, loc)
			ch <- prometheus.MustNewConstMetric(c.sibShare, prometheus.GaugeValue, v.SiblingSlowShare(), v.Node, win, loc)
			ch <- prometheus.MustNewConstMetric(c.evidence, prometheus.GaugeValue, v.Evidence, v.Node, win, loc)
		}
	}
}

// MeasurementDegradedAlert is the built-in rule that says when vantage's
// own numbers cannot be trusted.
const MeasurementDegradedAlert = "VantageMeasurementDegraded"

// withBuiltinAlerts returns cfg with the built-in rules appended (cfg
// itself is not changed): VantageMeasurementDegraded fires when the
// daemon's scheduling lag reaches node_detection.min_excess for a minute,
// to every notifier, at severity warning.
func withBuiltinAlerts(cfg *checks.Config) *checks.Config {
	for _, a := range cfg.Alerts {
		if a.Name == MeasurementDegradedAlert {
			return cfg // the user's own definition wins
		}
	}
	c := *cfg
	lag := cfg.Global.NodeDetection.MinExcess
	notify := make([]string, len(cfg.Notifiers))
	for i, n := range cfg.Notifiers {
		notify[i] = n.Name
	}
	c.Alerts = append(append([]checks.Alert(nil), cfg.Alerts...), checks.Alert{
		Name:     MeasurementDegradedAlert,
		When:     "measurement_lag >= " + lag.String(),
		Expr:     checks.Expr{Measure: "measurement_lag", Op: ">=", Value: time.Duration(lag).Seconds()},
		Window:   model.Duration(time.Minute),
		For:      model.Duration(time.Minute),
		Severity: "warning",
		Notify:   notify,
		Annotations: map[string]string{
			"summary": "vantage's own measurements are unreliable: its runs start up to {{ .value }} late (p99 over a minute), so latency and node alerts ignore differences that small",
			"description": "The host or the daemon is short of CPU. Every latency vantage measures now includes that wait, so it cannot tell a slow node from its own noise. " +
				"Give vantage more CPU, lower the probe load, or raise global.node_detection.min_excess.",
		},
	})
	return &c
}

// Measurement implements web.HealthSource.
func (s *statusSource) Measurement(context.Context) web.MeasurementStatus {
	h := s.d.health
	return web.MeasurementStatus{Degraded: h.Degraded(), LagSeconds: h.Lag().Seconds(),
		ThresholdSeconds: time.Duration(s.d.Config().Global.NodeDetection.MinExcess).Seconds()}
}

// Nodes implements web.HealthSource: the detector's verdicts over the
// shortest window a rule evaluates it on, and "not enough data" for every
// other node a check probes. Nil while no rule uses the detector.
func (s *statusSource) Nodes(context.Context) []web.NodeStatus {
	all := s.d.nodes.Verdicts(time.Now(), 3*s.d.evalInterval())
	if len(all) == 0 {
		return nil
	}
	var window time.Duration
	for w := range all {
		if window == 0 || w < window {
			window = w
		}
	}
	byNode := map[string]web.NodeStatus{}
	for _, v := range all[window] {
		ns := web.NodeStatus{Node: v.Node, Window: model.Duration(window), State: web.NodeOK}
		switch {
		case v.Degraded:
			ns.State, ns.Since = web.NodeDegraded, v.Since
		case v.Held:
			ns.State = web.NodeHeld
		}
		share, sib, ev, p90, sp90 := v.SlowShare(), v.SiblingSlowShare(), v.Evidence, v.P90, v.SiblingP90
		ns.SlowShare, ns.SiblingSlowShare, ns.Evidence, ns.P90, ns.SiblingP90 = &share, &sib, &ev, &p90, &sp90
		if take := v.SlowMedian; take > 0 {
			ns.SlowRunsTake = &take
		}
		ns.Affected = v.Affected
		byNode[v.Node] = ns
	}
	for _, t := range s.d.sched.Targets() {
		node := t.Node.Label()
		if node == "" {
			continue
		}
		ns, ok := byNode[node]
		if !ok {
			ns = web.NodeStatus{Node: node, State: web.NodeNotEnoughData}
		}
		if ns.Address == "" {
			ns.Address = t.Node.Address()
		}
		byNode[node] = ns
	}
	out := make([]web.NodeStatus, 0, len(byNode))
	for _, ns := range byNode {
		out = append(out, ns)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
