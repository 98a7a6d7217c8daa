// Package checks is vantage's configuration model: the YAML types every
// check, path, alert and notifier shares, their defaults, loading (strict,
// with environment expansion, *_file secrets and include globs) and
// validation with FILE:LINE:COL positions. Each check kind and notifier
// type declares its own keys and rules in its own package (Kind,
// NotifierKind); the loader takes them from a Registry.
package checks

import (
	"net/netip"
	"net/url"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Pos is a place in a config file. The loader fills it for every struct that
// validation may need to point at; it is never read from YAML.
type Pos struct {
	File string
	Line int
	Col  int
}

// Config is one loaded configuration: the main file merged with its includes.
type Config struct {
	Global    Global     `yaml:"global"`
	Paths     []Path     `yaml:"paths"`
	Checks    []Check    `yaml:"checks"`
	Alerts    []Alert    `yaml:"alerts"`
	Notifiers []Notifier `yaml:"notifiers"`
	Include   []string   `yaml:"include"`
	// AllowEmpty lets a reload remove every check of a running daemon,
	// which is otherwise refused as the likely result of a truncated file.
	AllowEmpty bool `yaml:"allow_empty"`

	// File is the main config file's path.
	File string `yaml:"-"`
	// Secrets holds every value that came from the environment or a *_file
	// key, so output can be scrubbed of them.
	Secrets *Redactor `yaml:"-"`
	// Warnings are problems that do not stop the config from loading, such
	// as an alert's checks glob that matches no check.
	Warnings []Error `yaml:"-"`
}

// Global holds defaults and labels shared by every check.
type Global struct {
	Interval           model.Duration    `yaml:"interval"`
	Timeout            model.Duration    `yaml:"timeout"`
	Location           string            `yaml:"location"`
	DownAfter          int               `yaml:"down_after"`
	UpAfter            int               `yaml:"up_after"`
	QuantileWindows    []model.Duration  `yaml:"quantile_windows"`
	MaxDomainsPerCheck int               `yaml:"max_domains_per_check"`
	Labels             map[string]string `yaml:"labels"`
	FlapWindow         model.Duration    `yaml:"flap_window"`
	NodeDetection      NodeDetection     `yaml:"node_detection"`
	NodeNames          map[string]string `yaml:"node_names"` // IP -> node name, for every check with nodes
	Metrics            MetricsDetail     `yaml:"metrics"`
	// ResendInterval is Alertmanager's default resend pace (notifiers may override).
	Pos Pos `yaml:"-"`
}

// NodeDetection tunes the detector that decides whether a load-balancer
// node is degraded against its siblings (measure node_degraded).
type NodeDetection struct {
	// MinExcess and MinRatio define a slow run: slower than the siblings'
	// p90 by at least MinExcess and by a factor of at least MinRatio.
	MinExcess model.Duration `yaml:"min_excess"`
	MinRatio  float64        `yaml:"min_ratio"`
	// FalsePagesPerWeek is the false-alarm rate the significance level is
	// derived from, per node.
	FalsePagesPerWeek float64 `yaml:"false_pages_per_week"`
	// MinSlowRuns is the least number of slow or failed runs of a node in
	// the window before it can be called degraded.
	MinSlowRuns int `yaml:"min_slow_runs"`
	// Baseline is the longer window the siblings' usual share of slow runs
	// is taken over.
	Baseline model.Duration `yaml:"baseline"`
	Pos      Pos            `yaml:"-"`
}

// MetricsDetail trades detail of the per-target series on /metrics for
// fewer series (docs/prometheus.md counts them); the defaults export
// everything.
type MetricsDetail struct {
	// Histograms selects the buckets of the duration histograms:
	// HistogramsClassicAndNative, HistogramsNative or HistogramsClassic.
	Histograms string `yaml:"histograms"`
	// HTTPPhases exports vantage_http_phase_seconds.
	HTTPPhases bool `yaml:"http_phases"`
	Pos        Pos  `yaml:"-"`
}

// Values of MetricsDetail.Histograms.
const (
	HistogramsClassicAndNative = "classic_and_native"
	HistogramsNative           = "native"
	HistogramsClassic          = "classic"
)

// Classic reports whether the histograms' classic buckets are exported.
func (m MetricsDetail) Classic() bool { return m.Histograms != HistogramsNative }

// Native reports whether the histograms' native buckets are exported.
func (m MetricsDetail) Native() bool { return m.Histograms != HistogramsClassic }

// IPVersion restricts a path to one address family: 0 (any), 4 or 6.
type IPVersion int

// Path is one network path: how a probe reaches the world.
type Path struct {
	Name      string            `yaml:"name"`
	SourceIP  string            `yaml:"source_ip"`
	Interface string            `yaml:"interface"`
	Proxy     string            `yaml:"proxy"`
	Resolver  string            `yaml:"resolver"`
	IPVersion IPVersion         `yaml:"ip_version"`
	TLS       *config.TLSConfig `yaml:"tls"`
	Pos       Pos               `yaml:"-"`
}

// ProxyURL is the parsed proxy, nil when the path has none.
func (p *Path) ProxyURL() *url.URL {
	if p.Proxy == "" {
		return nil
	}
	u, err := url.Parse(p.Proxy)
	if err != nil {
		return nil
	}
	return u
}

// Nodes says which load-balancer nodes a check probes.
type Nodes struct {
	Resolve   string     `yaml:"resolve"` // "all"
	Addresses []NodeAddr `yaml:"addresses"`
	Pos       Pos        `yaml:"-"`
}

// NodeAddr is one listed node: "10.0.0.11", "10.0.0.13:8443" or
// {name: lb2, address: 10.0.0.12}.
type NodeAddr struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	Pos     Pos    `yaml:"-"`
}

// ByteSize is a size such as 10MiB, 512KB or 1048576.
type ByteSize int64

// Expect is what makes a run a success: the keys every kind that takes
// them reads (max_duration, tls_min_days), and in Spec the assertions of
// the check's kind.
type Expect struct {
	MaxDuration model.Duration `yaml:"max_duration"`
	TLSMinDays  int            `yaml:"tls_min_days"`
	// Spec is the kind's own expect keys: the pointer its ExpectKind's
	// NewExpect returned, decoded from the mapping's other keys; nil for a
	// kind without any. The kind's Finish validates it and its prober
	// reads it by type assertion.
	Spec any `yaml:"-"`
	Pos  Pos `yaml:"-"`
}

// Check is one configured check: the keys every check shares, and in
// Spec the config of its kind.
type Check struct {
	Name      string            `yaml:"name"`
	Type      string            `yaml:"type"` // a registered kind
	Interval  model.Duration    `yaml:"interval"`
	Timeout   model.Duration    `yaml:"timeout"`
	Paths     []string          `yaml:"paths"`
	Nodes     *Nodes            `yaml:"nodes"`
	NodeNames map[string]string `yaml:"node_names"` // IP -> node name; see NodeName
	Labels    map[string]string `yaml:"labels"`
	TLS       *config.TLSConfig `yaml:"tls"`
	Expect    *Expect           `yaml:"expect"`

	// Spec is the config of the check's kind: the pointer its Kind's
	// NewConfig returned, decoded from the kind's keys and finished. The
	// kind's prober reads it by type assertion.
	Spec any `yaml:"-"`

	Pos Pos `yaml:"-"`
}

// NodeName is the name node_names gives the node at ip, or "". After
// loading, NodeNames holds global.node_names merged with the check's own
// (the check's win per address), keyed by canonical IP, and is nil for a
// check without nodes; so renaming a node changes the check's fingerprint
// and a reload starts the renamed node's series anew.
func (c *Check) NodeName(ip netip.Addr) string {
	if len(c.NodeNames) == 0 {
		return ""
	}
	if n, ok := c.NodeNames[ip.String()]; ok {
		return n
	}
	return c.NodeNames[ip.Unmap().String()]
}

// PinHost is the host that node pinning applies to, as the kind's config
// names it (its PinHost method): the url's host for http, the address's
// for tcp.
func (c *Check) PinHost() string {
	if p, ok := c.Spec.(interface{ PinHost() string }); ok {
		return p.PinHost()
	}
	return ""
}

// Alert is one alerting rule.
type Alert struct {
	Name          string            `yaml:"name"`
	Checks        []string          `yaml:"checks"`
	When          string            `yaml:"when"`
	Window        model.Duration    `yaml:"window"`
	By            []string          `yaml:"by"`
	For           model.Duration    `yaml:"for"`
	KeepFiringFor model.Duration    `yaml:"keep_firing_for"`
	Severity      string            `yaml:"severity"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
	Notify        []string          `yaml:"notify"`

	// Expr is When, parsed at load.
	Expr Expr `yaml:"-"`
	Pos  Pos  `yaml:"-"`
}

// Expr is a parsed `when:` condition: <measure> <op> <value>.
type Expr struct {
	Measure string
	Op      string
	Value   float64 // durations in seconds
}

// Notifier is one alert receiver.
type Notifier struct {
	Name           string                  `yaml:"name"`
	Type           string                  `yaml:"type"` // alertmanager | webhook | slack
	URL            string                  `yaml:"url"`
	URLFile        string                  `yaml:"url_file"`
	SendResolved   *bool                   `yaml:"send_resolved"`
	RepeatInterval *model.Duration         `yaml:"repeat_interval"`
	ResendInterval model.Duration          `yaml:"resend_interval"`
	MaxAge         model.Duration          `yaml:"max_age"`
	Timeout        model.Duration          `yaml:"timeout"`
	HTTPConfig     config.HTTPClientConfig `yaml:"http_config"`
	// Spec is the config of the notifier's type, as for Check.Spec; nil
	// for a type without keys of its own.
	Spec any `yaml:"-"`
	Pos  Pos `yaml:"-"`
}
