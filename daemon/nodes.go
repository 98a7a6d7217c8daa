package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/stats"
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
