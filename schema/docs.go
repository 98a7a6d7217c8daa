package schema

// Descriptions, enums and patterns the Go types cannot carry, keyed by
// "Type.key" of package checks; each kind's package declares its own
// (its SchemaDocs method). They mirror checks/validate.go; the schema
// test loads config.example.yaml through both, so a rule here that the
// loader does not share shows up as a failing test.

var typeDocs = map[string]string{
	"Global":        "Defaults and labels shared by every check.",
	"Path":          "A network path: how a probe reaches the world. A check runs over each path it lists.",
	"Nodes":         "Which load-balancer nodes a check probes: resolve: all, or listed addresses.",
	"Check":         "One check. Each (check, path, node) is one target.",
	"Expect":        "What makes a run a success: max_duration and tls_min_days, and the keys of the check's kind.",
	"Alert":         "An alerting rule evaluated by vantage itself.",
	"Notifier":      "An alert receiver.",
	"NodeDetection": "When a node counts as degraded against its siblings of the same check and path.",
	"MetricsDetail": "How much detail the per-target series on /metrics carry; fewer series for large instances (see docs/prometheus.md).",
}

var fieldDocs = map[string]string{
	"Config.include": `Further files holding checks: (and alerts:), relative to this file, e.g. ["checks.d/*.yaml"]. A name without glob characters must exist; a glob may match nothing.`,
	"Config.paths":   "Network paths. Without any, every check runs over the implicit path direct.",
	"Config.allow_empty": "Let a reload remove every check of a running daemon; without it such a reload " +
		"(an emptied or truncated file) is refused and the running config kept.",

	"Global.interval":              "Default interval of every check (default 30s).",
	"Global.timeout":               "Default timeout of every check; must be less than interval.",
	"Global.location":              "Added as label location to every check series and alert.",
	"Global.down_after":            "Consecutive failed runs before a target is DOWN (default 2).",
	"Global.up_after":              "Consecutive successful runs before a target is UP again (default 2).",
	"Global.quantile_windows":      "Sliding windows of the exported quantiles and success ratios.",
	"Global.max_domains_per_check": "Browser domain label cardinality cap; further domains become \"other\".",
	"Global.labels":                "Extra labels on every check series and alert.",
	"Global.flap_window":           "How far back flap memory counts firings (default 1h).",
	"Global.node_detection":        "Tuning of the node detector behind the node_degraded measure.",
	"Global.metrics":               "Detail of the per-target series on /metrics (default: every series).",

	"MetricsDetail.histograms":  "Buckets of the duration histograms: classic_and_native (default), native (one series per histogram for Prometheus with native histograms) or classic.",
	"MetricsDetail.http_phases": "Export vantage_http_phase_seconds, one series per step and phase (default true).",

	"NodeDetection.min_excess":           "A slow run is at least this much slower than the siblings' p90 (default 100ms).",
	"NodeDetection.min_ratio":            "... and at least this many times the siblings' p90 (default 1.5).",
	"NodeDetection.false_pages_per_week": "False node pages per node per week the significance level allows (default 1).",
	"NodeDetection.baseline":             "The longer window the siblings' usual share of slow runs is taken over (default 1h).",
	"NodeDetection.min_slow_runs":        "Slow or failed runs of a node in the window before it can be degraded (default 3).",
	"Global.node_names":                  "Node names by IP address, e.g. {10.0.0.12: lb2}, for every check with nodes: the name is the node label.",

	"Path.name":       "The path label.",
	"Path.source_ip":  "Bind outgoing connections (and DNS) to this address.",
	"Path.interface":  "SO_BINDTODEVICE to this interface (Linux).",
	"Path.proxy":      "http://, https:// (CONNECT) or socks5:// proxy, optionally with user:pass@.",
	"Path.resolver":   "DNS server host:port for this path (UDP, TCP fallback).",
	"Path.ip_version": "4, 6 or any (default any).",
	"Path.tls":        "Prometheus tls_config defaults for checks on this path.",

	"Nodes.resolve":   "all: probe every A/AAAA record of the pinned host separately, re-resolved each interval.",
	"Nodes.addresses": `Listed nodes: "10.0.0.11", "10.0.0.13:8443" or {name: lb2, address: 10.0.0.12}.`,

	"NodeAddr.name":    "The node label ([a-z0-9_-]+); default node_names' name for the address, else the IP.",
	"NodeAddr.address": "IP or IP:port.",

	"Check.name":       "Unique check name ([a-z0-9_-]+): the check label.",
	"Check.interval":   "How often each target runs (default global.interval).",
	"Check.timeout":    "Bound of one run (default global.timeout); must be less than interval.",
	"Check.paths":      "Paths this check runs over (default: every path).",
	"Check.nodes":      "Probe each load-balancer node separately.",
	"Check.node_names": "Node names by IP address for this check; override global.node_names per address.",
	"Check.labels":     "Extra labels on this check's series and alerts.",
	"Check.tls":        "Prometheus tls_config.",
	"Check.expect":     "What makes a run a success.",

	"Expect.max_duration": "A run slower than this is a failure.",
	"Expect.tls_min_days": "The certificate must be valid at least this many more days.",

	"Alert.checks":          "Check names or globs (default: all checks).",
	"Alert.when":            "<measure> <op> <value>, e.g. p99 > 1.5s. Measures: success_ratio, failures, p50, p90, p99, node_slowdown, node_degraded, node_slow_share, node_evidence, domain_error_ratio, domain_p90, cert_days_left, measurement_lag.",
	"Alert.window":          "The window the measure is taken over (default: the shortest quantile window).",
	"Alert.by":              "Labels of one alert instance (default [check, path, node]).",
	"Alert.for":             "Pending this long before firing.",
	"Alert.keep_firing_for": "Stay firing this long after the condition clears.",
	"Alert.severity":        "The severity label (default warning).",
	"Alert.notify":          "Notifier names (default: every notifier).",

	"Notifier.url":             "Where to deliver.",
	"Notifier.url_file":        "Read the URL from this file.",
	"Notifier.send_resolved":   "Also deliver resolved notices.",
	"Notifier.repeat_interval": "While firing, post an update at this pace (0 = never).",
	"Notifier.resend_interval": "Alertmanager: re-send firing alerts this often (default 1m).",
	"Notifier.max_age":         "Undelivered notifications older than this are dropped (default 6h).",
	"Notifier.timeout":         "Bound of one delivery.",
	"Notifier.http_config":     "Prometheus http_config.",
}

var enums = map[string][]any{
	"MetricsDetail.histograms": {"classic_and_native", "native", "classic"},
	"Nodes.resolve":            {"all"},
}

// patterns of a map field apply to its values.
var patterns = map[string]string{
	"Check.name":        `^[a-z0-9_-]+$`,
	"NodeAddr.name":     `^[a-z0-9_-]+$`,
	"Global.node_names": `^[a-z0-9_-]+$`,
	"Check.node_names":  `^[a-z0-9_-]+$`,
	"Path.name":         `^[A-Za-z0-9_.-]+$`,
}

var required = map[string][]string{
	"Path":     {"name"},
	"Check":    {"name", "type"},
	"Alert":    {"name", "when"},
	"Notifier": {"name", "type"},
}
